"""Development talks as a guardian books them: the offer, the page, booking, moving, cancelling, and the rules
that keep one pupil per slot and one slot per pupil, told to the school as events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notify_responses.settings import ResponsesSettings
from notify_responses.talks_testing import (
    book,
    booking_link_for,
    cancel_booking,
    open_booking,
    slots_offered_in,
)
from notify_responses.testing import RunningResponses, proof_in
from notify_shared import samples
from notify_shared.contract import TalkPupil, TalkSlot, TalksOffered, Teacher
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher, TopicReader, publish_applied
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture(autouse=True)
def _no_booking_link_in_a_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    leaked = [r.getMessage() for r in caplog.records if "/b/" in r.getMessage() and r.name != "httpx"]
    assert not leaked, f"a booking link in a log line: {leaked[:3]}"


def _offer(**overrides: Any) -> TalksOffered:
    """7B's round, open since yesterday for a week; the talks on the two days after it closes."""
    fields: dict[str, Any] = {"opens_at": SAMPLE_NOW - timedelta(days=1), "time": SAMPLE_NOW - timedelta(days=2)}
    return samples.talks_offered(**(fields | overrides))


async def _offered(responses: RunningResponses, event: TalksOffered) -> None:
    # The same call the Kafka handler makes; the first test goes through the broker.
    await responses.runtime.talks.apply_offer(event)


async def _published(settings: ResponsesSettings, responses: RunningResponses, event_type: str) -> list[dict[str, Any]]:
    async def outbox_empty() -> bool:
        return await responses.runtime.store.waiting() == 0

    await wait_until(outbox_empty, within=30, what="the outbox emptied")
    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.for_event_type(event_type)) as reader:
        return await reader.read_to_end()


async def test_an_offer_on_kafka_opens_the_page_with_the_free_slots_by_day_in_the_schools_time_zone(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await publish_applied(settings.kafka_bootstrap_servers, settings.topics, settings.consumer_group, event)

    page = await open_booking(responses, booking_link_for(settings, event))

    assert page.status_code == 200
    assert 'lang="nb" dir="ltr"' in page.text
    assert "Utviklingssamtaler 7B, høsten 2026" in page.text
    assert "Utviklingssamtale for" in page.text
    assert "Emma" in page.text
    assert slots_offered_in(page.text) == [slot.slot_id for slot in event.data.slots]
    first_day, second_day = sorted({slot.starts_at.astimezone(OSLO).date() for slot in event.data.slots})
    assert f"{first_day.day}. november" in page.text
    assert f"{second_day.day}. november" in page.text
    assert "14:00" in page.text
    assert "15:20" in page.text
    assert "<script" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_a_booking_is_confirmed_and_the_school_gets_talk_booked_once(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    slot = event.data.slots[2]

    booked = await book(responses, booking_link_for(settings, event), slot.slot_id)

    assert booked.status_code == 200
    assert "Samtalen er bestilt" in booked.text
    assert "14:40" in booked.text
    # The time names its day once ("fredag 27. november 2026 kl. 14:40–15:00"), not the day and then the date.
    assert booked.text.count("27. november") == 1
    assert "Rom 204" in booked.text
    assert "Ole Lærer" in booked.text
    (record,) = await _published(settings, responses, "talk.booked")
    assert record["data"] == {
        "school_id": "nor-0301-bjolsen",
        "round_id": "r-2026h-7b",
        "pupil_id": "p-77120",
        "slot_id": slot.slot_id,
        "starts_at": record["data"]["starts_at"],
        "ends_at": record["data"]["ends_at"],
        "teacher_id": "t-311",
        "guardian_id": "g-1001",
        "booked_at": record["data"]["booked_at"],
    }
    assert datetime.fromisoformat(record["data"]["starts_at"]) == slot.starts_at


async def test_either_guardian_moves_the_pupils_one_booking_and_cancels_it(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    first, second = event.data.slots[0], event.data.slots[5]
    mother, father = booking_link_for(settings, event, guardian=0), booking_link_for(settings, event, guardian=1)
    await book(responses, mother, first.slot_id)

    seen_by_father = await open_booking(responses, father)
    moved = await book(responses, father, second.slot_id)
    cancelled = await cancel_booking(responses, mother)

    assert "Samtalen din:" in seen_by_father.text
    assert f'value="{first.slot_id}" checked' in seen_by_father.text
    assert moved.status_code == 200
    assert "Samtalen er bestilt" in moved.text
    assert cancelled.status_code == 200
    assert "Samtalen er avbestilt" in cancelled.text
    (booked,) = await _published(settings, responses, "talk.booked")
    (move,) = await _published(settings, responses, "talk.moved")
    (cancellation,) = await _published(settings, responses, "talk.cancelled")
    assert booked["data"]["slot_id"] == first.slot_id
    assert (move["data"]["previous_slot_id"], move["data"]["slot_id"], move["data"]["guardian_id"]) == (
        first.slot_id,
        second.slot_id,
        "g-1002",
    )
    assert cancellation["data"]["reason"] == "by_guardian"
    assert (cancellation["data"]["slot_id"], cancellation["data"]["guardian_id"]) == (second.slot_id, "g-1001")
    after = await open_booking(responses, father)
    assert "Samtalen din:" not in after.text
    assert first.slot_id in slots_offered_in(after.text)
    assert second.slot_id in slots_offered_in(after.text)


async def test_a_slot_another_pupil_holds_is_answered_just_taken_with_the_slots_still_free(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    wanted = event.data.slots[1].slot_id
    emma, noah = booking_link_for(settings, event, pupil=0), booking_link_for(settings, event, pupil=1)
    page_noah_opened = await open_booking(responses, noah)
    await book(responses, emma, wanted)

    late = await responses.client.post(
        f"/b/{noah}",
        data={"proof": proof_in(page_noah_opened.text), "action": "book", "slot": wanted},
    )

    assert late.status_code == 409
    assert "Noen andre bestilte den tiden akkurat nå" in late.text
    assert wanted not in slots_offered_in(late.text)
    assert len(slots_offered_in(late.text)) == len(event.data.slots) - 1
    assert len(await _published(settings, responses, "talk.booked")) == 1


async def test_a_guardian_of_two_children_cannot_hold_overlapping_talks(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    shared_parent = samples.sample_guardian(1)
    pupils = [
        TalkPupil(pupil_id="p-1", first_name="Emma", guardians=(shared_parent, samples.sample_guardian(2))),
        TalkPupil(pupil_id="p-2", first_name="Jonas", guardians=(shared_parent,)),
    ]
    starts = datetime(2026, 11, 27, 14, 0, tzinfo=OSLO)
    slots = [
        TalkSlot(slot_id="a", starts_at=starts, ends_at=starts + timedelta(minutes=20), teacher_id="t-1", place="204"),
        TalkSlot(
            slot_id="b",
            starts_at=starts + timedelta(minutes=10),
            ends_at=starts + timedelta(minutes=30),
            teacher_id="t-2",
            place="105",
        ),
        TalkSlot(
            slot_id="c",
            starts_at=starts + timedelta(minutes=20),
            ends_at=starts + timedelta(minutes=40),
            teacher_id="t-2",
            place="105",
        ),
    ]
    teachers = [Teacher(teacher_id="t-1", name="Ole Lærer"), Teacher(teacher_id="t-2", name="Siri Lærer")]
    event = _offer(pupils=pupils, slots=slots, teachers=teachers)
    await _offered(responses, event)
    await book(responses, booking_link_for(settings, event, pupil=0, guardian=1), "a")

    overlapping = await book(responses, booking_link_for(settings, event, pupil=1), "b")
    right_after = await book(responses, booking_link_for(settings, event, pupil=1), "c")

    assert overlapping.status_code == 409
    assert "Du har allerede en samtale for et annet barn på den tiden" in overlapping.text
    assert right_after.status_code == 200


async def test_a_withdrawn_booked_slot_cancels_the_booking_and_a_pupil_added_later_can_book(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    withdrawn = event.data.slots[0]
    await book(responses, booking_link_for(settings, event), withdrawn.slot_id)

    later = _offer(
        event_id="offer-2",
        slots=list(event.data.slots[1:]),
        pupils=samples.sample_talk_pupils(3),
        time=SAMPLE_NOW - timedelta(hours=1),
    )
    await _offered(responses, later)

    (cancellation,) = await _published(settings, responses, "talk.cancelled")
    assert cancellation["data"]["reason"] == "slot_withdrawn"
    assert cancellation["data"]["slot_id"] == withdrawn.slot_id
    assert "guardian_id" not in cancellation["data"]
    page = await open_booking(responses, booking_link_for(settings, later))
    assert "Samtalen din:" not in page.text
    assert withdrawn.slot_id not in slots_offered_in(page.text)
    newcomer = await book(responses, booking_link_for(settings, later, pupil=2), later.data.slots[0].slot_id)
    assert newcomer.status_code == 200


async def test_an_offer_older_than_the_one_applied_changes_nothing(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    older = _offer(event_id="older", slots=list(event.data.slots[:1]), time=SAMPLE_NOW - timedelta(days=3))

    applied = await responses.runtime.talks.apply_offer(older)

    assert applied is False
    page = await open_booking(responses, booking_link_for(settings, event))
    assert slots_offered_in(page.text) == [slot.slot_id for slot in event.data.slots]


async def test_a_guardian_without_parental_responsibility_gets_no_link_and_cannot_book(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    without = samples.sample_guardian(2, has_parental_responsibility=False)
    pupils = [TalkPupil(pupil_id="p-1", first_name="Emma", guardians=(samples.sample_guardian(1), without))]
    event = _offer(pupils=pupils)
    await _offered(responses, event)
    token = booking_link_for(settings, event, guardian=1)

    page = await open_booking(responses, token)
    posted = await responses.client.post(f"/b/{token}", data={"proof": "x", "action": "book", "slot": "s"})

    assert page.status_code == 404
    assert "Denne lenken virker ikke" in page.text or "lenken" in page.text
    assert "Bjølsen" not in page.text
    assert posted.status_code in (403, 404)
    assert await responses.runtime.store.waiting() == 0


async def test_the_window_closing_while_the_page_is_open_books_nothing(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    event = _offer()
    await _offered(responses, event)
    token = booking_link_for(settings, event)
    opened = await open_booking(responses, token)
    clock.now = event.data.booking_closes_at

    posted = await responses.client.post(
        f"/b/{token}", data={"proof": proof_in(opened.text), "action": "book", "slot": event.data.slots[0].slot_id}
    )

    assert opened.status_code == 200
    assert posted.status_code == 410
    assert "Bestillingen er stengt" in posted.text
    assert await responses.runtime.store.waiting() == 0
    assert (await open_booking(responses, token)).status_code == 410


async def test_before_the_window_opens_the_page_says_when_it_opens(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer(opens_at=SAMPLE_NOW + timedelta(days=2))
    await _offered(responses, event)

    page = await open_booking(responses, booking_link_for(settings, event))

    assert page.status_code == 200
    assert "Bestillingen har ikke åpnet ennå" in page.text
    assert "Du kan bestille fra søndag 22. november kl. 09:00." in page.text
    assert 'name="slot"' not in page.text


@pytest.mark.parametrize(
    ("day", "what"),
    [(datetime(2026, 10, 25, 14, 0), "summer time ends"), (datetime(2027, 3, 28, 14, 0), "summer time starts")],
)
async def test_a_slot_on_the_day_the_clocks_change_is_shown_at_its_local_time(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock, day: datetime, what: str
) -> None:
    starts = day.replace(tzinfo=OSLO)
    slot = TalkSlot(
        slot_id="dst", starts_at=starts, ends_at=starts + timedelta(minutes=20), teacher_id="t-311", place="Rom 204"
    )
    opens = starts - timedelta(days=5)
    clock.now = opens + timedelta(hours=1)
    event = _offer(opens_at=opens, slots=[slot], time=opens - timedelta(days=1))
    await _offered(responses, event)

    page = await open_booking(responses, booking_link_for(settings, event))

    assert "14:00" in page.text, what
    assert "14:20" in page.text, what
    assert f"{starts.day}." in page.text


async def test_the_page_is_in_the_guardians_language_right_to_left_for_arabic(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    arabic = samples.sample_guardian(1, language="ar")
    event = _offer(pupils=[TalkPupil(pupil_id="p-1", first_name="Emma", guardians=(arabic,))])
    await _offered(responses, event)

    page = await open_booking(responses, booking_link_for(settings, event))

    assert 'lang="ar" dir="rtl"' in page.text
    assert "اختاروا موعدًا" in page.text


async def test_a_post_without_the_forms_value_books_nothing(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await _offered(responses, event)
    token = booking_link_for(settings, event)

    forged = await responses.client.post(f"/b/{token}", data={"action": "book", "slot": event.data.slots[0].slot_id})

    assert forged.status_code == 403
    assert "Bestillingen ble ikke sendt" in forged.text
    assert await responses.runtime.store.waiting() == 0


async def test_an_offer_that_breaks_the_contract_is_dead_lettered_with_the_reason(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    document = _offer().model_dump(mode="json", exclude_none=True)
    document["data"]["slots"][0]["teacher_id"] = "t-unknown"
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish_raw(
            settings.topics.talks_offered,
            json.dumps(document).encode(),
            key=b"r-2026h-7b",
            headers=[("content-type", b"application/cloudevents+json")],
        )

    async def dead_lettered() -> bool:
        async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.dead_letter) as reader:
            return len(await reader.poll()) > 0

    await wait_until(dead_lettered, within=30, what="the offer dead-lettered")
    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.dead_letter) as reader:
        (record,) = await reader.read_to_end()
    assert "teacher" in str(record["data"])
