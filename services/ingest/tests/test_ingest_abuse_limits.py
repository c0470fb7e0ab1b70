"""What a school's key may not do even with a valid event: send under another name or sender id, text numbers
abroad, post without pause, or guess keys. Each refusal is a clear answer, and nothing reaches Kafka."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notify_ingest.auth import api_key_digest, stored_key
from notify_ingest.settings import AllowedSchool, IngestSettings
from notify_ingest.testing import (
    OTHER_SCHOOL,
    OTHER_SCHOOL_KEY,
    OTHER_SCHOOL_NAME,
    OTHER_SCHOOL_SMS_SENDER_ID,
    SCHOOL,
    SCHOOL_KEY,
    RunningIngest,
    records_on,
    running_ingest,
)
from notify_shared import samples
from notify_shared.contract import Channel, CloudEvent

pytestmark = pytest.mark.kafka

SWEDISH_MOBILE = "+46701234567"
DANISH_MOBILE = "+4520123456"


def _document(event: CloudEvent) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.model_dump_json(exclude_none=True))
    return document


async def _nothing_published(settings: IngestSettings, event: CloudEvent) -> bool:
    topic = settings.topics.for_event_type(event.type)
    return await records_on(settings.kafka_bootstrap_servers, topic) == []


@pytest.mark.parametrize(
    ("school", "field"),
    [
        ({"sms_sender_id": "Politiet"}, "data.school.sms_sender_id"),
        ({"name": "Politiet"}, "data.school.name"),
    ],
    ids=["sender id", "name"],
)
async def test_a_school_name_or_sms_sender_other_than_the_schools_own_is_403_naming_the_field(
    ingest: RunningIngest, settings: IngestSettings, school: dict[str, str], field: str
) -> None:
    event = samples.meeting_created(school=samples.sample_school(**school))

    response = await ingest.post_event(_document(event))

    assert response.status_code == 403
    problem = response.json()
    assert problem["error"] == "not_allowed"
    assert problem["event_id"] == event.id
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "INGEST_SCHOOLS" in problem["errors"][0]["message"]
    assert "Politiet" not in response.text
    assert await _nothing_published(settings, event)


async def test_a_name_written_with_a_combining_accent_is_the_same_name(
    settings: IngestSettings,
) -> None:
    composed = {SCHOOL: AllowedSchool(name="Årstad skole", sms_sender_id="Arstad")}
    async with running_ingest(settings.model_copy(update={"schools": composed})) as running:
        event = samples.meeting_created(school=samples.sample_school(name="A\u030arstad skole", sms_sender_id="Arstad"))
        response = await running.post_event(_document(event))
    assert response.status_code == 202


async def test_an_sms_number_outside_the_allowed_countries_is_403_naming_the_recipient_never_the_number(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    recipients = [
        samples.sample_guardian(1),
        samples.sample_guardian(2, phone=SWEDISH_MOBILE),
        # Email only, but a failed email may fall back to SMS: the number counts all the same.
        samples.sample_guardian(3, phone=DANISH_MOBILE, channels=[Channel.EMAIL]),
        samples.sample_guardian(4, phone="not a number"),  # never texted: the contract marks it invalid
    ]
    event = samples.meeting_created(recipients=recipients)

    response = await ingest.post_event(_document(event))

    assert response.status_code == 403
    problem = response.json()
    assert problem["error"] == "not_allowed"
    assert [error["field"] for error in problem["errors"]] == ["data.recipients.1.phone", "data.recipients.2.phone"]
    assert "INGEST_SMS_COUNTRIES" in problem["errors"][0]["message"]
    for number in (SWEDISH_MOBILE, DANISH_MOBILE, "701234567", "20123456", "70 12 34 567"):
        assert number not in response.text
    assert await _nothing_published(settings, event)


async def test_a_talks_offer_with_a_guardians_number_abroad_is_403_naming_that_guardian(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    pupils = samples.sample_talk_pupils(2)
    abroad = pupils[1].guardians[0].model_copy(update={"phone": "+46701234567"})
    pupils[1] = pupils[1].model_copy(update={"guardians": (abroad, pupils[1].guardians[1])})
    event = samples.talks_offered(pupils=pupils)

    response = await ingest.post_event(_document(event))

    assert response.status_code == 403
    assert [error["field"] for error in response.json()["errors"]] == ["data.pupils.1.guardians.0.phone"]
    assert "701234567" not in response.text
    assert await _nothing_published(settings, event)


@pytest.fixture
async def nordic_ingest(settings: IngestSettings) -> AsyncIterator[RunningIngest]:
    async with running_ingest(settings.model_copy(update={"sms_countries": frozenset({"NO", "SE"})})) as running:
        yield running


async def test_numbers_of_every_country_in_the_setting_are_accepted(nordic_ingest: RunningIngest) -> None:
    event = samples.meeting_created(
        recipients=[samples.sample_guardian(1), samples.sample_guardian(2, phone=SWEDISH_MOBILE)]
    )
    response = await nordic_ingest.post_event(_document(event))
    assert response.status_code == 202

    danish = samples.meeting_created(recipients=[samples.sample_guardian(1, phone=DANISH_MOBILE)])
    refused = await nordic_ingest.post_event(_document(danish))
    assert refused.status_code == 403
    assert "NO, SE" in refused.json()["errors"][0]["message"]


async def test_another_schools_key_is_still_forbidden_before_its_settings_are_compared(ingest: RunningIngest) -> None:
    response = await ingest.post_event(_document(samples.meeting_created()), key=OTHER_SCHOOL_KEY)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


@pytest.fixture
async def limited_ingest(settings: IngestSettings) -> AsyncIterator[RunningIngest]:
    # So slow a refill that no token comes back while the test runs.
    limits = {"rate_per_second": 0.001, "rate_burst": 2, "auth_failure_limit": 3}
    async with running_ingest(settings.model_copy(update=limits)) as running:
        yield running


async def test_a_key_past_its_burst_gets_429_with_retry_after_while_other_keys_post_on(
    limited_ingest: RunningIngest, settings: IngestSettings
) -> None:
    first, second, third = (samples.meeting_created() for _ in range(3))
    assert (await limited_ingest.post_event(_document(first))).status_code == 202
    assert (await limited_ingest.post_event(_document(second))).status_code == 202

    refused = await limited_ingest.post_event(_document(third))

    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 1000
    nordnes = samples.sample_school(id=OTHER_SCHOOL, name=OTHER_SCHOOL_NAME, sms_sender_id=OTHER_SCHOOL_SMS_SENDER_ID)
    other_school = samples.meeting_created(school=nordnes)
    assert (await limited_ingest.post_event(_document(other_school), key=OTHER_SCHOOL_KEY)).status_code == 202
    published = await records_on(settings.kafka_bootstrap_servers, settings.topics.meeting_created)
    assert sorted(json.loads(record.value)["id"] for record in published) == sorted(
        [first.id, second.id, other_school.id]
    )


def _client(ingest: RunningIngest, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=ingest.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest")


async def _post(client: httpx.AsyncClient, key: str, event: CloudEvent) -> httpx.Response:
    return await client.post(
        "/v1/events",
        json=_document(event),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents+json"},
    )


async def test_an_address_that_sent_too_many_wrong_keys_gets_429_even_with_a_right_one_and_others_do_not(
    limited_ingest: RunningIngest,
) -> None:
    event = samples.meeting_created()
    async with _client(limited_ingest, "192.0.2.7") as guesser, _client(limited_ingest, "198.51.100.1") as school:
        answers = [await _post(guesser, f"guess-number-{number:08d}", event) for number in range(3)]
        assert [answer.status_code for answer in answers] == [401, 401, 401]

        blocked = await _post(guesser, f"guess-number-{3:08d}", event)
        with_the_right_key = await _post(guesser, SCHOOL_KEY, event)
        from_elsewhere = await _post(school, SCHOOL_KEY, event)

    assert blocked.status_code == 429
    assert blocked.json()["error"] == "rate_limited"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # While blocked, a key is not even checked: a guess that happens to be right tells the guesser nothing.
    assert with_the_right_key.status_code == 429
    assert from_elsewhere.status_code == 202


async def test_metrics_count_refusals_by_the_schools_settings_and_by_the_limits(limited_ingest: RunningIngest) -> None:
    politiet = samples.meeting_created(school=samples.sample_school(sms_sender_id="Politiet"))
    for _ in range(3):
        await limited_ingest.post_event(_document(politiet))
    for _ in range(4):
        await limited_ingest.post_event(_document(politiet), key="not-a-key-of-any-school")

    exposition = (await limited_ingest.client.get("/metrics")).text

    counted = {
        (sample.labels["school"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "notify_ingest_requests_total"
    }
    assert counted == {
        (SCHOOL, "not_allowed"): 2.0,
        (SCHOOL, "rate_limited"): 1.0,
        ("unknown", "unauthorized"): 3.0,
        ("unknown", "rate_limited"): 1.0,
    }


async def test_plain_keys_still_work_and_the_start_up_log_names_their_schools_never_the_keys(
    settings: IngestSettings, caplog: pytest.LogCaptureFixture
) -> None:
    keys = {SCHOOL: stored_key(SCHOOL_KEY), OTHER_SCHOOL: stored_key(api_key_digest(OTHER_SCHOOL_KEY))}
    async with running_ingest(settings.model_copy(update={"api_keys": keys})) as running:
        response = await running.post_event(_document(samples.meeting_created()))

    assert response.status_code == 202
    (warning,) = [record for record in caplog.records if "plain keys" in record.getMessage()]
    assert warning.levelno == logging.WARNING
    assert SCHOOL in warning.getMessage()
    assert OTHER_SCHOOL not in warning.getMessage()
    assert all(SCHOOL_KEY not in record.getMessage() for record in caplog.records)
