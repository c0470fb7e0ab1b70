"""Replies to the invitation SMS: read in the guardian's language, in Norwegian and in English."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notify_responses.settings import ResponsesSettings
from notify_responses.sms_replies import read_reply
from notify_responses.testing import RunningResponses, isolated_settings, link_for, running_responses
from notify_shared import samples
from notify_shared.contract import MeetingCreated
from notify_shared.delivery_reports.signatures import notify_signature_headers, twilio_signature
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

SECRET = "inbound-sms-secret-0123456789"
TWILIO_TOKEN = "twilio-auth-token-0123456789"


@pytest.mark.parametrize(
    ("reply", "language", "answer"),
    [
        ("JA", "nb", "accepted"),
        ("nei", "nb", "declined"),
        ("Ja!", "so", "accepted"),
        ("Ja, vi kommer begge to", "nb", "accepted"),
        ("Kommer ikke", "nn", "declined"),
        ("kanskje", "pl", "tentative"),
        ("tak", "pl", "accepted"),
        ("Nie.", "pl", "declined"),
        ("Ні", "uk", "declined"),
        ("HAYIR", "tr", "declined"),
        ("نعم", "ar", "accepted"),
        ("Có thể", "vi", "tentative"),
        ("yes", "ar", "accepted"),
        ("  Maybe?? ", "de", "tentative"),
    ],
)
def test_a_reply_is_read_case_and_accent_insensitively(reply: str, language: str, answer: str) -> None:
    read = read_reply(reply, language)
    assert read is not None
    assert read.value == answer


@pytest.mark.parametrize(
    ("reply", "language"),
    [("tak", "nb"), ("Hvor er møtet?", "nb"), ("", "nb"), ("👍", "en"), ("ja nei", "xx")],
)
def test_a_reply_that_is_no_answer_in_these_languages_is_not_read_as_one(reply: str, language: str) -> None:
    # "ja nei" starts with "ja": a first word decides. "tak" is Polish, not Norwegian.
    expected = "accepted" if reply == "ja nei" else None
    read = read_reply(reply, language)
    assert (read.value if read else None) == expected


def _settings(kafka_bootstrap: str, tmp_path: Any) -> ResponsesSettings:
    return isolated_settings(
        kafka_bootstrap=kafka_bootstrap,
        work_dir=tmp_path,
        delivery_report_secret=SECRET,
        twilio_account_sid="AC0123456789abcdef0123456789abcdef",
        twilio_auth_token=TWILIO_TOKEN,
    )


async def _invite(settings: ResponsesSettings, responses: RunningResponses, event: MeetingCreated) -> None:
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish(event)
    token = link_for(settings, event)

    async def known() -> bool:
        return (await responses.open(token)).status_code == 200

    await wait_until(known, within=30, what="the meeting known to the service")


async def _send(responses: RunningResponses, message_id: str, sender: str, text: str, *, signed: bool = True) -> Any:
    body = json.dumps({"id": message_id, "from": sender, "text": text}).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        headers |= notify_signature_headers(SECRET, body)
    return await responses.client.post("/sms/inbound/webhook", content=body, headers=headers)


async def _on_topic(settings: ResponsesSettings, responses: RunningResponses, topic: str) -> list[dict[str, Any]]:
    async def outbox_empty() -> bool:
        return await responses.runtime.store.waiting() == 0

    await wait_until(outbox_empty, within=30, what="the outbox emptied")
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        return await reader.read_to_end()


@pytest.mark.kafka
async def test_sms_replies_answer_the_latest_open_invitation_and_the_rest_go_to_the_school(
    kafka_bootstrap: str, tmp_path: Any
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    polish = samples.sample_guardian(4, language="pl", phone="+4791000004")
    event = samples.meeting_created(recipients=[polish])
    async with running_responses(settings, clock=SettableClock(samples.SAMPLE_NOW)) as responses:
        await _invite(settings, responses, event)

        answered = [
            await _send(responses, "m1", "+47 910 00 004", "JA"),
            await _send(responses, "m2", "+4791000004", "nei"),
            await _send(responses, "m2", "+4791000004", "nei"),  # the provider retries its webhook
            await _send(responses, "m3", "004791000004", "tak"),
            await _send(responses, "m4", "+4791000004", "Hvor er møtet?"),
            await _send(responses, "m5", "+4798765432", "JA"),
        ]
        unsigned = await _send(responses, "m6", "+4791000004", "nei", signed=False)

        assert [response.json()["outcome"] for response in answered] == [
            "recorded",
            "recorded",
            "duplicate",
            "recorded",
            "unrecognised",
            "unrecognised",
        ]
        assert unsigned.status_code == 401
        answers = await _on_topic(settings, responses, settings.topics.meeting_rsvp)
        unrecognised = await _on_topic(settings, responses, settings.topics.sms_reply_unrecognised)

    assert [(record["data"]["answer"], record["data"]["via"]) for record in answers] == [
        ("accepted", "sms"),
        ("declined", "sms"),
        ("accepted", "sms"),
    ]
    reasons = sorted((record["data"]["reason"], record["data"].get("guardian_id")) for record in unrecognised)
    assert reasons == [("not_understood", "g-1004"), ("unknown_number", None)]
    assert "+4798765432" not in json.dumps(unrecognised)


@pytest.mark.kafka
async def test_a_twilio_reply_is_accepted_only_with_twilios_signature(kafka_bootstrap: str, tmp_path: Any) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    event = samples.meeting_created(recipients=[samples.sample_guardian(1, phone="+4791000001")])
    async with running_responses(settings, clock=SettableClock(samples.SAMPLE_NOW)) as responses:
        await _invite(settings, responses, event)
        params = [("MessageSid", "SM" + "0" * 32), ("From", "+4791000001"), ("Body", "Nei")]
        url = settings.public_url + "/sms/inbound/twilio"
        signature = twilio_signature(TWILIO_TOKEN, url, params)

        forged = await responses.client.post(
            "/sms/inbound/twilio", data=dict(params), headers={"X-Twilio-Signature": "bm9wZQ=="}
        )
        genuine = await responses.client.post(
            "/sms/inbound/twilio", data=dict(params), headers={"X-Twilio-Signature": signature}
        )

        assert forged.status_code == 401
        assert genuine.status_code == 200
        assert genuine.text.endswith("<Response/>")
        (record,) = await _on_topic(settings, responses, settings.topics.meeting_rsvp)
    assert record["data"]["answer"] == "declined"
