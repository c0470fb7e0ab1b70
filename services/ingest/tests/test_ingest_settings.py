"""Settings: a missing or bad one stops start-up naming it, and never echoes a key."""

from __future__ import annotations

import json

import pytest

from notify_ingest.settings import IngestSettings
from notify_shared.settings import load_settings

KEYS = {"nor-0301-bjolsen": "bjolsen-very-secret-key-1", "nor-4601-nordnes": "nordnes-very-secret-key-2"}


def _stopped(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        load_settings(IngestSettings)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_the_keys_come_from_ingest_api_keys_as_json_and_the_rest_has_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(KEYS))
    settings = load_settings(IngestSettings)
    assert {school: key.get_secret_value() for school, key in settings.api_keys.items()} == KEYS
    assert settings.database_url == "sqlite+aiosqlite:///./.local/ingest.db"
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8000)  # noqa: S104 - the documented default
    assert "very-secret" not in repr(settings)


def test_ingest_database_url_and_max_body_bytes_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql+asyncpg://ingest@db:5432/ingest")
    monkeypatch.setenv("INGEST_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("HTTP_PORT", "8080")
    settings = load_settings(IngestSettings)
    assert settings.database_url == "postgresql+asyncpg://ingest@db:5432/ingest"
    assert settings.max_body_bytes == 4096
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
        ('{"nor-0301-bjolsen": "short-secret"}', "shorter than 16 characters"),
        (
            '{"nor-0301-bjolsen": "same-very-secret-key-1", "nor-4601-nordnes": "same-very-secret-key-1"}',
            "same API key",
        ),
        ('{"Bjølsen skole": "bjolsen-very-secret-key-1"}', "INGEST_API_KEYS"),
    ],
    ids=["malformed", "empty", "short", "shared", "bad school id"],
)
def test_bad_ingest_api_keys_stop_start_up_naming_it_without_echoing_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, complaint: str
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", value)
    message = _stopped(capsys)
    assert "INGEST_API_KEYS" in message
    assert complaint in message
    assert "secret" not in message


def test_a_body_limit_that_is_not_a_number_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INGEST_API_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("INGEST_MAX_BODY_BYTES", "1MB")
    assert "INGEST_MAX_BODY_BYTES" in _stopped(capsys)
