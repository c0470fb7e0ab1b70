"""Settings: documented, and a bad one stops start-up with a message that names it."""

from __future__ import annotations

import pytest

from notify_invitations.settings import InvitationsSettings
from notify_shared.settings import load_settings


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


def test_durations_are_read_as_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_RETRY_BASE", "0.5")
    monkeypatch.setenv("EMAIL_DEADLINE", "PT12H")
    settings = load_settings(InvitationsSettings)
    assert settings.delivery_retry_base.total_seconds() == 0.5
    assert settings.email_deadline.total_seconds() == 12 * 3600


def test_a_second_sms_provider_must_differ_from_the_first_and_be_complete(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMS_PROVIDER", "webhook")
    monkeypatch.setenv("SMS_WEBHOOK_URL", "https://sms.example.invalid/send")
    monkeypatch.setenv("SMS_FALLBACK_PROVIDER", "webhook")
    with pytest.raises(SystemExit):
        load_settings(InvitationsSettings)
    assert "SMS_FALLBACK_WEBHOOK_URL is required" in capsys.readouterr().err


def test_quiet_hours_are_21_to_07_by_default_and_can_be_moved_or_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    default = load_settings(InvitationsSettings).quiet_hours
    assert default is not None
    assert (default.start.isoformat(), default.end.isoformat()) == ("21:00:00", "07:00:00")

    monkeypatch.setenv("INVITATIONS_QUIET_HOURS", '{"start": "22:00", "end": "06:30"}')
    moved = load_settings(InvitationsSettings).quiet_hours
    assert moved is not None
    assert (moved.start.isoformat(), moved.end.isoformat()) == ("22:00:00", "06:30:00")

    monkeypatch.setenv("INVITATIONS_QUIET_HOURS", "off")
    assert load_settings(InvitationsSettings).quiet_hours is None


def test_quiet_hours_that_are_not_json_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INVITATIONS_QUIET_HOURS", "21-07")
    with pytest.raises(SystemExit):
        load_settings(InvitationsSettings)
    assert "INVITATIONS_QUIET_HOURS" in capsys.readouterr().err
