"""Answer links: a parent's link works until the meeting starts, and nothing else passes for one."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from notify_shared.answer_links import (
    TOKEN_LENGTH,
    AnswerLinkKeys,
    AnswerLinkSettings,
    Rejection,
    TokenRejectedError,
    answer_url,
    invitation_reference,
)
from notify_shared.settings import describe_settings_error

OLD_KEY = b"old-key-0123456789abcdef0123456789abcdef"
NEW_KEY = b"new-key-fedcba9876543210fedcba9876543210"
STARTS_AT = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
BEFORE_START = STARTS_AT - timedelta(days=2)
INVITATION = {"school_id": "nor-0301-bjolsen", "meeting_id": "m-2026-7b-1", "guardian_id": "g-50321"}


def _keys(signing: str = "b", **keys: bytes) -> AnswerLinkKeys:
    return AnswerLinkKeys(keys or {"a": OLD_KEY, "b": NEW_KEY}, signing_key_id=signing)


def _token(keys: AnswerLinkKeys | None = None) -> str:
    return (keys or _keys()).sign(**INVITATION, expires_at=STARTS_AT)


def _rejection(token: str, keys: AnswerLinkKeys | None = None, now: datetime = BEFORE_START) -> Rejection:
    with pytest.raises(TokenRejectedError) as rejected:
        (keys or _keys()).verify(token, now=now)
    return rejected.value.reason


def test_a_link_names_the_invitation_it_was_made_for_and_expires_when_the_meeting_starts() -> None:
    link = _keys().verify(_token(), now=BEFORE_START)

    assert link.invitation == invitation_reference("nor-0301-bjolsen", "m-2026-7b-1", "g-50321")
    assert link.expires_at == STARTS_AT
    assert link.key_id == "b"


def test_a_link_is_short_enough_for_an_sms_and_says_nothing_about_anyone() -> None:
    token = _token()
    url = answer_url("https://svar.bjolsen.example.no/", token)

    assert len(token) == TOKEN_LENGTH == 35
    assert url == f"https://svar.bjolsen.example.no/r/{token}"
    assert len(url) == 69
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    for value in INVITATION.values():
        assert value not in token
        assert value.encode().hex() not in token


def test_other_invitations_get_other_references() -> None:
    references = {
        invitation_reference("nor-0301-bjolsen", "m-1", "g-1"),
        invitation_reference("nor-0301-bjolsen", "m-1", "g-2"),
        invitation_reference("nor-0301-bjolsen", "m-2", "g-1"),
        invitation_reference("nor-4601-nordnes", "m-1", "g-1"),
        # Ids that would run together the same without a separator.
        invitation_reference("nor-0301-bjolsen", "m-1g", "-1"),
    }
    assert len(references) == 5


def test_from_the_moment_the_meeting_starts_the_link_is_expired() -> None:
    assert _rejection(_token(), now=STARTS_AT) is Rejection.EXPIRED
    assert _rejection(_token(), now=STARTS_AT + timedelta(days=30)) is Rejection.EXPIRED


def test_after_a_rotation_links_signed_with_the_old_key_still_work_until_it_is_removed() -> None:
    before_rotation = _token(_keys(signing="a"))

    assert _keys(signing="b").verify(before_rotation, now=BEFORE_START).key_id == "a"
    assert _rejection(before_rotation, keys=_keys(signing="b", b=NEW_KEY)) is Rejection.UNKNOWN_KEY


def test_a_link_signed_with_a_key_of_another_deployment_is_refused() -> None:
    foreign = _token(_keys(signing="b", b=b"someone-elses-key-0123456789abcdef0123"))

    assert _rejection(foreign) is Rejection.BAD_SIGNATURE


def test_changing_any_character_of_a_link_makes_it_invalid() -> None:
    token = _token()
    for position in range(len(token)):
        for replacement in "Ab9_-":
            if token[position] == replacement:
                continue
            altered = token[:position] + replacement + token[position + 1 :]
            assert _rejection(altered) in {Rejection.BAD_SIGNATURE, Rejection.UNKNOWN_KEY, Rejection.MALFORMED}


def test_a_link_cut_short_or_lengthened_is_malformed() -> None:
    token = _token()
    assert _rejection(token[:-1]) is Rejection.MALFORMED
    assert _rejection(token + "A") is Rejection.MALFORMED
    assert _rejection(token + "=") is Rejection.MALFORMED
    assert _rejection("") is Rejection.MALFORMED
    assert _rejection("b" + "é" * (TOKEN_LENGTH - 1)) is Rejection.MALFORMED


@given(st.text(max_size=5000))
def test_no_string_of_any_length_passes_for_a_link(candidate: str) -> None:
    assert _rejection(candidate) in set(Rejection)


def test_signing_refuses_a_naive_time_and_a_meeting_beyond_the_token_range() -> None:
    keys = _keys()
    with pytest.raises(ValueError, match="timezone-aware"):
        keys.sign(**INVITATION, expires_at=datetime(2026, 12, 3, 18, 0))
    with pytest.raises(ValueError, match="too far"):
        keys.sign(**INVITATION, expires_at=datetime(2199, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("keys", "signing", "message"),
    [
        ('{"a": "short"}', "a", "shorter than 32 bytes"),
        ('{"ab": "0123456789abcdef0123456789abcdef"}', "ab", "one letter or digit"),
        ('{"a": "0123456789abcdef0123456789abcdef"}', "b", "must be one of the key ids"),
        ("{not json", "a", "not a JSON object"),
        ("{}", "a", "go together"),
    ],
)
def test_settings_with_unusable_keys_stop_start_up_naming_the_setting(
    keys: str, signing: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSWER_LINK_KEYS", keys)
    monkeypatch.setenv("ANSWER_LINK_SIGNING_KEY_ID", signing)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://svar.example.no")

    with pytest.raises(ValidationError) as error:
        AnswerLinkSettings()

    described = describe_settings_error(error.value)
    assert message in described
    assert "0123456789abcdef" not in described


def test_settings_give_keys_that_sign_and_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWER_LINK_KEYS", json.dumps({"a": OLD_KEY.decode(), "b": NEW_KEY.decode()}))
    monkeypatch.setenv("ANSWER_LINK_SIGNING_KEY_ID", "b")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://svar.example.no")

    keys = AnswerLinkKeys.from_settings(AnswerLinkSettings())

    assert keys.signing_key_id == "b"
    assert _keys().verify(_token(keys), now=BEFORE_START).key_id == "b"


def test_an_expired_link_still_tells_which_invitation_it_was_for() -> None:
    with pytest.raises(TokenRejectedError) as rejected:
        _keys().verify(_token(), now=STARTS_AT)

    assert rejected.value.invitation == invitation_reference(**INVITATION)


def test_the_answer_form_proof_belongs_to_one_link_and_one_deployment() -> None:
    keys = _keys()
    token = _token()
    other_token = keys.sign(
        school_id="nor-0301-bjolsen", meeting_id="m-2026-7b-1", guardian_id="g-2", expires_at=STARTS_AT
    )
    foreign = _keys(signing="b", b=b"someone-elses-key-0123456789abcdef0123")

    assert keys.form_proof_matches(token, keys.form_proof(token))
    assert not keys.form_proof_matches(token, keys.form_proof(other_token))
    assert not keys.form_proof_matches(token, foreign.form_proof(token))
    assert not keys.form_proof_matches(token, None)
    assert not keys.form_proof_matches(token, "")
    assert not keys.form_proof_matches(token, "é" * 16)
