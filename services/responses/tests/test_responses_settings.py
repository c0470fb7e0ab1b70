"""The responses service does not start without its answer-link settings, and says which are missing."""

from __future__ import annotations

import pytest

from notify_responses.settings import ResponsesSettings
from notify_shared.settings import load_settings


def test_without_the_answer_link_settings_the_service_stops_naming_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ANSWER_LINK_KEYS", "ANSWER_LINK_SIGNING_KEY_ID", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(SystemExit) as stopped:
        load_settings(ResponsesSettings)

    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "ANSWER_LINK_KEYS, ANSWER_LINK_SIGNING_KEY_ID and PUBLIC_BASE_URL" in message


def test_a_key_without_a_public_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWER_LINK_KEYS", '{"a": "0123456789abcdef0123456789abcdef"}')
    monkeypatch.setenv("ANSWER_LINK_SIGNING_KEY_ID", "a")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)

    with pytest.raises(ValueError, match="go together"):
        ResponsesSettings()
