"""The event contract as an admin-system integrator meets it."""

from __future__ import annotations

import json
from datetime import time as time_of_day
from datetime import timedelta

import pytest
from pydantic import ValidationError

from notify_shared import samples
from notify_shared.contract import (
    ALL_EVENT_TYPES,
    CLOUDEVENTS_JSON,
    INPUT_EVENT_TYPES,
    Channel,
    ContactProblem,
    EventRejected,
    Lesson,
    MeetingCreated,
    Recipient,
    decode_event,
    encode_binary,
    encode_structured,
    partition_key,
)
from notify_shared.kafka import decode_for_topic


def test_structured_and_binary_modes_decode_to_the_same_event() -> None:
    event = samples.meeting_created()
    structured = decode_event(*encode_structured(event), INPUT_EVENT_TYPES)
    binary = decode_event(*encode_binary(event), INPUT_EVENT_TYPES)
    assert structured == binary == event


def test_binary_mode_carries_attributes_as_ce_headers_and_data_as_the_value() -> None:
    value, headers = encode_binary(samples.meeting_created(event_id="evt-42"))
    header_map = dict(headers)
    assert header_map["ce_id"] == b"evt-42"
    assert header_map["ce_type"] == b"meeting.created"
    assert header_map["content-type"] == b"application/json"
    assert json.loads(value)["meeting"]["meeting_id"] == "m-2026-7b-foreldremote"


def test_structured_mode_is_labelled_as_a_cloudevent() -> None:
    _, headers = encode_structured(samples.meeting_created())
    assert headers == [("content-type", CLOUDEVENTS_JSON.encode())]


def test_the_kafka_key_keeps_one_meetings_events_on_one_partition() -> None:
    created, cancelled = samples.meeting_created(), samples.meeting_cancelled()
    assert partition_key(created) == partition_key(cancelled) == b"m-2026-7b-foreldremote"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("912 34 567", "+4791234567"), ("+47 912 34 567", "+4791234567"), ("004791234567", "+4791234567")],
)
def test_phone_numbers_in_national_or_international_form_become_e164(raw: str, e164: str) -> None:
    assert samples.sample_guardian(phone=raw).phone == e164


@pytest.mark.parametrize("raw", ["912 34 56", "+47 000", "ring meg", "+4791234567\r\nBcc: x"])
def test_an_invalid_phone_fails_only_the_sms_channel(raw: str) -> None:
    guardian = samples.sample_guardian(phone=raw)
    assert guardian.contact_problem(Channel.SMS) is ContactProblem.INVALID_PHONE
    assert guardian.contact_problem(Channel.EMAIL) is None


@pytest.mark.parametrize("raw", ["kari@", "kari.nordmann@@example.no", "kari@example.no\r\nBcc: evil@example.com"])
def test_an_invalid_email_fails_only_the_email_channel(raw: str) -> None:
    guardian = samples.sample_guardian(email=raw)
    assert guardian.contact_problem(Channel.EMAIL) is ContactProblem.INVALID_EMAIL
    assert guardian.contact_problem(Channel.SMS) is None


def test_a_missing_address_is_named_as_missing() -> None:
    guardian = Recipient(guardian_id="g-1", name="Kari", has_parental_responsibility=True)
    assert guardian.contact_problem(Channel.EMAIL) is ContactProblem.MISSING_EMAIL
    assert guardian.contact_problem(Channel.SMS) is ContactProblem.MISSING_PHONE


def test_line_breaks_in_names_and_titles_fold_into_spaces() -> None:
    guardian = samples.sample_guardian(name="Kari\r\nBcc: evil@example.com")
    meeting = samples.sample_meeting(title="Foreldremøte\n7B")
    assert guardian.name == "Kari Bcc: evil@example.com"
    assert meeting.title == "Foreldremøte 7B"


@pytest.mark.parametrize(("tag", "normalised"), [("NB", "nb"), ("nb-no", "nb-NO"), ("uk-UA", "uk-UA"), ("prs", "prs")])
def test_language_tags_are_normalised(tag: str, normalised: str) -> None:
    assert samples.sample_guardian(language=tag).language == normalised


@pytest.mark.parametrize("sender", ["Bjølsen", "Bjolsen skole", "12345", ""])
def test_sms_sender_ids_must_be_short_ascii_letters_and_digits(sender: str) -> None:
    with pytest.raises(ValidationError):
        samples.sample_school(sms_sender_id=sender)


def test_an_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        samples.sample_school(timezone="Europe/Atlantis")


def test_a_meeting_must_end_after_it_starts() -> None:
    meeting = samples.sample_meeting()
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        samples.sample_meeting(ends_at=meeting.starts_at - timedelta(minutes=1))


def test_the_absence_reason_is_in_the_contract_but_documented_as_never_rendered() -> None:
    schema = INPUT_EVENT_TYPES["absence.noted"].model_json_schema()
    reason = schema["$defs"]["NotedAbsence"]["properties"]["reason"]
    assert "NEVER rendered" in reason["description"]


def test_malformed_json_is_rejected_with_a_reason() -> None:
    with pytest.raises(EventRejected) as rejected:
        decode_event(b'{"specversion": "1.0", ', [("content-type", CLOUDEVENTS_JSON.encode())], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "malformed_json"


def test_invalid_utf8_is_rejected_as_malformed() -> None:
    with pytest.raises(EventRejected) as rejected:
        decode_event(b'{"specversion": "1.0", "id": "\xff"}', [], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "malformed_json"


def test_an_unknown_event_type_is_rejected_with_its_id() -> None:
    document = json.loads(samples.meeting_created(event_id="evt-7").model_dump_json()) | {"type": "meeting.moved"}
    with pytest.raises(EventRejected) as rejected:
        decode_event(json.dumps(document).encode(), [], INPUT_EVENT_TYPES)
    assert (rejected.value.reason, rejected.value.event_id) == ("unknown_event_type", "evt-7")


def test_an_event_on_another_types_topic_is_rejected() -> None:
    value, headers = encode_structured(samples.meeting_cancelled())
    with pytest.raises(EventRejected) as rejected:
        decode_for_topic(value, headers, "meeting.created")
    assert rejected.value.reason == "topic_mismatch"


def test_schema_violations_name_the_fields_but_never_echo_the_values() -> None:
    document = json.loads(samples.meeting_created().model_dump_json())
    document["data"]["recipients"][0]["has_parental_responsibility"] = "Kari Nordmann's secret"
    del document["data"]["meeting"]["location"]
    with pytest.raises(EventRejected) as rejected:
        decode_event(json.dumps(document).encode(), [], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "schema_violation"
    text = "\n".join(rejected.value.errors)
    assert "data.recipients.0.has_parental_responsibility" in text
    assert "data.meeting.location" in text
    assert "secret" not in text


def test_a_non_cloudevent_content_type_is_refused() -> None:
    with pytest.raises(EventRejected) as rejected:
        decode_event(b"hello", [("content-type", b"text/plain")], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "unsupported_content_type"


def test_json_without_specversion_is_not_a_cloudevent() -> None:
    with pytest.raises(EventRejected) as rejected:
        decode_event(b'{"meeting_id": "m-1"}', [], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "not_a_cloudevent"


def test_cloudevents_extension_attributes_are_kept() -> None:
    document = json.loads(samples.meeting_created().model_dump_json()) | {"traceparent": "00-abc-def-01"}
    event = decode_event(json.dumps(document).encode(), [], INPUT_EVENT_TYPES)
    assert isinstance(event, MeetingCreated)
    assert event.model_extra == {"traceparent": "00-abc-def-01"}


@pytest.mark.parametrize("source", ["/visma-flyt/0301", "urn:ist:extens:0301", "https://vigilo.example.no/skole/4012"])
def test_a_source_that_is_a_uri_reference_is_accepted(source: str) -> None:
    document = json.loads(samples.meeting_created().model_dump_json()) | {"source": source}
    assert decode_event(json.dumps(document).encode(), [], INPUT_EVENT_TYPES).source == source


@pytest.mark.parametrize("source", ["visma flyt 0301", "/visma-flyt/0301\n", "http://[::1/", "/skole/%zz"])
def test_a_source_that_is_not_a_uri_reference_is_a_schema_violation(source: str) -> None:
    document = json.loads(samples.meeting_created().model_dump_json()) | {"source": source}
    with pytest.raises(EventRejected) as rejected:
        decode_event(json.dumps(document).encode(), [], INPUT_EVENT_TYPES)
    assert rejected.value.reason == "schema_violation"
    assert any(error.startswith("source:") for error in rejected.value.errors)


@pytest.mark.parametrize(("written", "read"), [("09:00", time_of_day(9, 0)), ("08:30:00", time_of_day(8, 30))])
def test_a_lesson_starts_at_a_local_school_time(written: str, read: time_of_day) -> None:
    assert Lesson.model_validate({"period": 1, "starts_at": written}).starts_at == read


@pytest.mark.parametrize("written", ["9:00", "09:00+01:00", "09:00Z", "08:30:00.5", "24:00", "0900", 32400])
def test_a_lesson_start_other_than_hh_mm_or_hh_mm_ss_is_refused(written: object) -> None:
    with pytest.raises(ValidationError, match="local time of day"):
        Lesson.model_validate({"period": 1, "starts_at": written})


def test_the_cloudevents_attributes_are_required_in_the_json_schema_though_code_may_omit_them() -> None:
    for model in ALL_EVENT_TYPES.values():
        required = model.model_json_schema()["required"]
        assert required[:4] == ["specversion", "id", "source", "type"], model.__name__
    assert samples.meeting_created().specversion == "1.0"
