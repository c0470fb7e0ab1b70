"""Promises of the digest service that only show at the edges: a digest that falls due in quiet hours, an absence
for a guardian who may not receive routine notices, and an absence reason that must never be kept."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from notify_digest.runtime import Runtime
from notify_digest.testing import Deployment
from notify_shared import samples
from notify_shared.contract import (
    AbsenceNoted,
    Channel,
    CloudEvent,
    DeliveryMode,
    Lesson,
    MessagePosted,
    NotedAbsence,
    PostedMessage,
    Pupil,
    Recipient,
)
from notify_shared.ledger import create_engine
from notify_shared.testing.kafka import TopicReader, publish_applied
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 11, 30, 8, 40, tzinfo=OSLO)
SCHOOL = samples.sample_school()
REASON = "Sykdom: omgangssyke"


def absence_of_emma(recipients: list[Recipient], *, period: int = 1) -> AbsenceNoted:
    return AbsenceNoted(
        id=samples.new_id(),
        source=samples.SOURCE,
        time=MONDAY,
        data=NotedAbsence(
            school=SCHOOL,
            pupil=Pupil(pupil_id="p-77120", first_name="Emma", class_name="7B"),
            date=date(2026, 11, 30),
            lessons=(Lesson(period=period, subject="Matematikk"),),
            reported_by_guardian=False,
            reason=REASON,
            recipients=tuple(recipients),
        ),
    )


def class_message(recipients: list[Recipient]) -> MessagePosted:
    return MessagePosted(
        id=samples.new_id(),
        source=samples.SOURCE,
        time=MONDAY,
        data=PostedMessage(
            school=SCHOOL,
            message_id=f"msg-{samples.new_id()[:8]}",
            class_id="c-7b",
            class_name="7B",
            author_name="Ole Lærer",
            subject="Foreldremøte neste uke",
            body="Vi møtes i klasserommet.",
            urgent=False,
            posted_at=MONDAY,
            recipients=tuple(recipients),
        ),
    )


async def apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    """Publish events and wait until the service has committed them, i.e. stored or sent what they mean."""
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def run_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.run_due()


async def every_stored_row(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table in the service's database, read back as an operator with a SQL client would."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            tables: dict[str, list[dict[str, Any]]] = {}
            for name in names:
                rows = await connection.execute(sa.text(f'SELECT * FROM "{name}"'))  # noqa: S608 - names from the schema
                tables[name] = [dict(row._mapping) for row in rows]
            return tables
    finally:
        await engine.dispose()


async def test_a_daily_digest_that_falls_due_in_quiet_hours_waits_until_they_end(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    # The service was down over the 17:00 slot and comes back at 22:30, inside quiet hours (21:00-07:00).
    parent = samples.sample_guardian(1, delivery_mode=DeliveryMode.DAILY, channels=[Channel.EMAIL])
    async with deployment.running() as runtime:
        await apply(deployment, kafka_bootstrap, class_message([parent]))
        await run_at(deployment, runtime, datetime(2026, 11, 30, 22, 30, tzinfo=OSLO))
        assert deployment.smtp.received == []
        await run_at(deployment, runtime, datetime(2026, 12, 1, 6, 59, tzinfo=OSLO))
        assert deployment.smtp.received == []
        await run_at(deployment, runtime, datetime(2026, 12, 1, 7, 0, tzinfo=OSLO))
    (digest,) = deployment.smtp.received
    assert digest.envelope_to == ["guardian1@example.no"]
    plain = digest.message.get_body(("plain",))
    assert plain is not None
    assert "Foreldremøte neste uke" in str(plain.get_content())


async def test_an_absence_for_a_guardian_without_parental_responsibility_is_suppressed_at_once_and_not_kept(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    mother = samples.sample_guardian(1, channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY)
    stepfather = samples.sample_guardian(
        2, channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY, has_parental_responsibility=False
    )
    async with (
        deployment.running() as runtime,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        await apply(deployment, kafka_bootstrap, absence_of_emma([mother, stepfather]))

        async def stepfather_has_a_status() -> bool:
            await statuses.poll()
            return any(record["data"]["guardian_id"] == stepfather.guardian_id for record in statuses.records)

        # Before any notice window or digest slot: the answer for him is given at intake.
        await wait_until(stepfather_has_a_status, what="the ineligible guardian's status")
        stored = await every_stored_row(deployment.settings.database_url)
        await run_at(deployment, runtime, MONDAY + timedelta(minutes=10))
        await run_at(deployment, runtime, datetime(2026, 12, 4, 14, 0, tzinfo=OSLO))
        await statuses.poll()

    about_him = [record["data"] for record in statuses.records if record["data"]["guardian_id"] == "g-1002"]
    assert [(status["status"], status["reason"]) for status in about_him] == [
        ("suppressed", "no_parental_responsibility")
    ]
    for table in ("digest_items", "digest_notices", "digests"):
        assert not [row for row in stored.get(table, []) if row.get("guardian_id") == "g-1002"], table
    assert [sms["to"] for sms in deployment.sms.messages()] == ["+4790000001"]
    assert [item.envelope_to for item in deployment.smtp.received] == [["guardian1@example.no"]]


async def test_the_reason_for_an_absence_is_in_no_row_of_the_digest_database(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent = samples.sample_guardian(1, channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY)
    async with deployment.running() as runtime:
        await apply(
            deployment, kafka_bootstrap, absence_of_emma([parent], period=1), absence_of_emma([parent], period=2)
        )
        after_intake = await every_stored_row(deployment.settings.database_url)
        await run_at(deployment, runtime, MONDAY + timedelta(minutes=10))
        await run_at(deployment, runtime, datetime(2026, 12, 4, 14, 0, tzinfo=OSLO))
        after_sending = await every_stored_row(deployment.settings.database_url)

    # The absence was kept, for the notice and for the digest: the check below looks at real rows.
    assert any("Emma" in str(row) for row in after_intake["digest_notices"])
    assert any("Emma" in str(row) for row in after_intake["digest_items"])
    for moment, tables in (("after intake", after_intake), ("after sending", after_sending)):
        for table, rows in tables.items():
            for row in rows:
                text = " ".join(str(value) for value in row.values())
                assert "Sykdom" not in text, f"{moment}: {table}"
                assert "omgangssyke" not in text, f"{moment}: {table}"
    assert len(deployment.sms.messages()) == 1
    assert len(deployment.smtp.received) == 1
