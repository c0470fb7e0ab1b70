"""Settings: documented, and a bad one stops start-up with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify_invitations.settings import InvitationsSettings
from notify_shared.settings import load_settings

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def _environment_names() -> list[str]:
    return [str(field.validation_alias or name).upper() for name, field in InvitationsSettings.model_fields.items()]


def test_every_setting_is_documented_in_the_operations_table() -> None:
    table = OPERATIONS.read_text(encoding="utf-8")
    missing = [name for name in _environment_names() if f"| `{name}` |" not in table]
    assert not missing, f"document these in docs/operations.md: {missing}"


def test_an_invalid_setting_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_PORT", "70000")
    monkeypatch.setenv("INVITATIONS_CONCURRENCY", "zero")
    with pytest.raises(SystemExit) as stopped:
        load_settings(InvitationsSettings)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "SMTP_PORT" in message
    assert "INVITATIONS_CONCURRENCY" in message


def test_a_webhook_provider_without_its_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMS_PROVIDER", "webhook")
    monkeypatch.delenv("SMS_WEBHOOK_URL", raising=False)
    with pytest.raises(SystemExit):
        load_settings(InvitationsSettings)
    assert "SMS_WEBHOOK_URL is required" in capsys.readouterr().err


def test_secrets_are_not_echoed_in_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("SMTP_PORT", "not-a-port")
    with pytest.raises(SystemExit):
        load_settings(InvitationsSettings)
    assert "hunter2" not in capsys.readouterr().err
