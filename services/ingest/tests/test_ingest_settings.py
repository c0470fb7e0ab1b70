"""Settings: a missing or bad one stops start-up naming it, and never echoes a key."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from notify_ingest.auth import ApiKeys, api_key_digest
from notify_ingest.settings import IngestSettings
from notify_shared.settings import load_settings

KEYS = {"nor-0301-bjolsen": "bjolsen-very-secret-key-1", "nor-4601-nordnes": "nordnes-very-secret-key-2"}
DIGESTS = {school: api_key_digest(key) for school, key in KEYS.items()}
SCHOOLS = {
    "nor-0301-bjolsen": {"name": "Bjølsen skole", "sms_sender_id": "Bjolsen"},
    "nor-4601-nordnes": {"name": "Nordnes skole", "sms_sender_id": "Nordnes"},
}


@pytest.fixture(autouse=True)
def _schools_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_SCHOOLS", json.dumps(SCHOOLS))


def _stopped(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        load_settings(IngestSettings)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_the_key_digests_come_from_ingest_api_keys_as_json_and_the_rest_has_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(DIGESTS))
    settings = load_settings(IngestSettings)
    assert ApiKeys(settings.api_keys).school_for(KEYS["nor-4601-nordnes"]) == "nor-4601-nordnes"
    assert settings.plain_key_schools == []
    assert settings.schools["nor-0301-bjolsen"].sms_sender_id == "Bjolsen"
    assert settings.sms_countries == {"NO"}
    assert (settings.rate_per_second, settings.rate_burst) == (1.0, 60)
    assert (settings.auth_failure_limit, settings.auth_failure_window) == (20, timedelta(seconds=60))
    assert settings.database_url == "sqlite+aiosqlite:///./.local/ingest.db"
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8000)  # noqa: S104 - the documented default
    assert DIGESTS["nor-0301-bjolsen"].removeprefix("sha256:") not in repr(settings)


def test_the_digest_the_shell_makes_is_the_one_the_ingest_checks_keys_against(monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/ingest.md tells operators to run `printf %s "$key" | sha256sum`.
    key = KEYS["nor-0301-bjolsen"]
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        shell_digest = hashlib.sha256(key.encode()).hexdigest()
    else:
        shell_digest = (
            subprocess.run([sha256sum], input=key.encode(), capture_output=True, check=True).stdout.split()[0].decode()
        )
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps({"nor-0301-bjolsen": f"sha256:{shell_digest.upper()}"}))
    settings = load_settings(IngestSettings)
    assert ApiKeys(settings.api_keys).school_for(key) == "nor-0301-bjolsen"
    assert ApiKeys(settings.api_keys).school_for(f"sha256:{shell_digest}") is None


def test_plain_keys_are_still_accepted_for_the_move_to_digests_and_named_as_such(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = {"nor-0301-bjolsen": KEYS["nor-0301-bjolsen"], "nor-4601-nordnes": DIGESTS["nor-4601-nordnes"]}
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(keys))
    settings = load_settings(IngestSettings)
    assert settings.plain_key_schools == ["nor-0301-bjolsen"]
    api_keys = ApiKeys(settings.api_keys)
    assert [api_keys.school_for(key) for key in KEYS.values()] == ["nor-0301-bjolsen", "nor-4601-nordnes"]
    assert "very-secret" not in repr(settings)


def test_ingest_database_url_max_body_bytes_and_the_limits_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(DIGESTS))
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql+asyncpg://ingest@db:5432/ingest")
    monkeypatch.setenv("INGEST_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("INGEST_SMS_COUNTRIES", "no, se,DK")
    monkeypatch.setenv("INGEST_RATE_PER_SECOND", "0.5")
    monkeypatch.setenv("INGEST_RATE_BURST", "10")
    monkeypatch.setenv("INGEST_AUTH_FAILURE_LIMIT", "5")
    monkeypatch.setenv("INGEST_AUTH_FAILURE_WINDOW", "PT5M")
    monkeypatch.setenv("HTTP_PORT", "8080")
    settings = load_settings(IngestSettings)
    assert settings.database_url == "postgresql+asyncpg://ingest@db:5432/ingest"
    assert settings.max_body_bytes == 4096
    assert settings.sms_countries == {"NO", "SE", "DK"}
    assert (settings.rate_per_second, settings.rate_burst) == (0.5, 10)
    assert (settings.auth_failure_limit, settings.auth_failure_window) == (5, timedelta(minutes=5))
    assert settings.http_port == 8080


def test_without_ingest_api_keys_start_up_stops_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INGEST_API_KEYS", raising=False)
    assert "INGEST_API_KEYS: Field required" in _stopped(capsys)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ('{"nor-0301-bjolsen": "bjolsen-very-secret-key-1"', "not a JSON object"),
        ("{}", "at least one school"),
        ('{"nor-0301-bjolsen": "short-secret"}', "the key of ['nor-0301-bjolsen'] is shorter than 16 characters"),
        (
            '{"nor-0301-bjolsen": "same-very-secret-key-1", "nor-4601-nordnes": "same-very-secret-key-1"}',
            "same API key",
        ),
        (
            json.dumps({"nor-0301-bjolsen": KEYS["nor-0301-bjolsen"], "nor-4601-nordnes": DIGESTS["nor-0301-bjolsen"]}),
            "same API key",
        ),
        ('{"Bjølsen skole": "bjolsen-very-secret-key-1"}', "INGEST_API_KEYS"),
        (
            '{"nor-0301-bjolsen": "CHANGE-ME-make-one-with-secrets-token-urlsafe"}',
            "the key of ['nor-0301-bjolsen'] is the example placeholder",
        ),
        (
            '{"nor-0301-bjolsen": "sha256:CHANGE-ME-the-sha256-of-the-school-key"}',
            "the key of ['nor-0301-bjolsen'] is the example placeholder",
        ),
        (
            '{"nor-0301-bjolsen": "sha256:0123456789abcdef-secret"}',
            "the key of ['nor-0301-bjolsen'] starts with sha256: but is not followed by 64 hexadecimal digits",
        ),
        ('{"nor-0301-bjolsen": 12345678901234567890}', "is not a string"),
    ],
    ids=[
        "malformed",
        "empty",
        "short",
        "shared",
        "shared, once plain and once as digest",
        "bad school id",
        "placeholder",
        "placeholder digest",
        "not a digest",
        "not a string",
    ],
)
def test_bad_ingest_api_keys_stop_start_up_naming_it_without_echoing_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, complaint: str
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", value)
    message = _stopped(capsys)
    assert "INGEST_API_KEYS" in message
    assert complaint in message
    assert "secret" not in message
    assert DIGESTS["nor-0301-bjolsen"].removeprefix("sha256:") not in message


@pytest.mark.parametrize(
    ("schools", "complaint"),
    [
        (None, "INGEST_SCHOOLS: Field required"),
        ('{"nor-0301-bjolsen": {"name": "Bjølsen skole"', "INGEST_SCHOOLS: Value error, not a JSON object"),
        (
            json.dumps({"nor-0301-bjolsen": SCHOOLS["nor-0301-bjolsen"]}),
            "INGEST_SCHOOLS has no entry for ['nor-4601-nordnes'], which have API keys",
        ),
        (
            json.dumps(SCHOOLS | {"nor-0301-bjolsen": {"name": "Bjølsen skole", "sms_sender_id": "Bjølsen"}}),
            "['sms_sender_id'] would not be valid in an event",
        ),
        (json.dumps(SCHOOLS | {"nor-0301-bjolsen": {"name": "Bjølsen skole"}}), "Field required"),
    ],
    ids=["missing", "malformed", "a keyed school left out", "a sender no network takes", "no sender"],
)
def test_bad_ingest_schools_stop_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], schools: str | None, complaint: str
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(DIGESTS))
    if schools is None:
        monkeypatch.delenv("INGEST_SCHOOLS")
    else:
        monkeypatch.setenv("INGEST_SCHOOLS", schools)
    message = _stopped(capsys)
    assert "INGEST_SCHOOLS" in message
    assert complaint in message


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("INGEST_SMS_COUNTRIES", "NO,XX", "['XX'] are not ISO 3166 country codes"),
        ("INGEST_SMS_COUNTRIES", " , ", "name at least one country"),
        ("INGEST_RATE_PER_SECOND", "0", "greater than 0"),
        ("INGEST_RATE_BURST", "0", "greater than or equal to 1"),
        ("INGEST_AUTH_FAILURE_LIMIT", "none", "valid integer"),
        ("INGEST_AUTH_FAILURE_WINDOW", "0", "above zero"),
        ("INGEST_MAX_BODY_BYTES", "1MB", "valid integer"),
    ],
)
def test_a_bad_limit_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(DIGESTS))
    monkeypatch.setenv(name, value)
    message = _stopped(capsys)
    assert f"{name}: " in message
    assert complaint in message


def test_the_quick_start_of_docs_ingest_md_configures_an_ingest_that_takes_the_demo_key_it_curls_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guide = (Path(__file__).resolve().parents[3] / "docs" / "ingest.md").read_text(encoding="utf-8")
    quick_start = guide.split("## Try it", 1)[1].split("\n## ", 1)[0]
    exports = dict(re.findall(r"^export (INGEST_[A-Z_]+)='([^']*)'$", quick_start, flags=re.MULTILINE))
    assert {"INGEST_API_KEYS", "INGEST_SCHOOLS"} <= set(exports)
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(IngestSettings)
    assert settings.plain_key_schools == []
    assert ApiKeys(settings.api_keys).school_for("local-demo-key-bjolsen") == "nor-0301-bjolsen"
    assert "Bearer local-demo-key-bjolsen" in quick_start
