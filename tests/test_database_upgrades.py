"""The upgrades in docs/operations.md ("Upgrading the database") work on databases the earlier versions made: the
services refuse them before, start on them after, and the rows that matter are kept."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from notify_digest.store import metadata as digest_metadata
from notify_ingest.store import metadata as ingest_metadata
from notify_invitations.meeting_states import MeetingStateStore
from notify_reminders.answers import metadata as reminder_answers_metadata
from notify_reminders.store import ReminderStore
from notify_responses.store import metadata as responses_metadata
from notify_shared import samples
from notify_shared.contract import Channel, NotificationStatusReport
from notify_shared.delivery import SourceEventRef
from notify_shared.delivery.job import DeliveryJob
from notify_shared.ledger import (
    DeliveryKey,
    DeliveryLedger,
    OutdatedTableError,
    create_engine,
    create_schema,
    deliveries,
    notification_id_for,
)
from notify_shared.ledger.tables import delivery_retries, unpublished_statuses
from notify_shared.rendering import RenderedNotification

REPO = Path(__file__).resolve().parents[1]
OPERATIONS = REPO / "docs" / "operations.md"
SCHEMA_BEFORE_SCHOOL_SCOPED_KEYS = REPO / "tests" / "data" / "schema_before_school_scoped_keys.sql"
SCHEMA_BEFORE_SOURCE_SCOPED_KEYS = REPO / "tests" / "data" / "schema_before_source_scoped_keys.sql"
SOURCE_NOT_RECORDED = "notify:source-not-recorded"
MEETING_CREATED = "01JDQ5W8M3C8ZK4N2T6Y7B9E0F"

# A meeting with a pending reminder, as the version before school-scoped keys stored them.
ROWS_BEFORE_SCHOOL_SCOPED_KEYS = """
INSERT INTO reminder_meetings VALUES ('m-1', now(), 'Rom 204', now(), false);
INSERT INTO reminder_invitations VALUES ('m-1', 'g-1001', now());
INSERT INTO reminders (reminder_id, meeting_id, school_id, guardian_id, channel, rule_id, starts_at, due_at, state,
    payload, updated_at) VALUES ('r-1', 'm-1', 'nor-0301-bjolsen', 'g-1001', 'email', 'email-2d', now(), now(),
    'pending', '{}', now());
INSERT INTO invitation_meeting_states VALUES ('m-1', 'nor-0301-bjolsen', 0, '{}', false, '[]', now());
"""


def _upgrade_sql(step: str) -> str:
    section = OPERATIONS.read_text(encoding="utf-8").split(f"### {step}\n", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"the upgrade step {step!r} has no SQL block"
    return match.group(1)


async def _run_script(database_url: str, script: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            # asyncpg's own execute runs a script of several statements; SQLAlchemy's prepared statements do not.
            await driver.execute(script)
    finally:
        await engine.dispose()


async def _refusals_at_start_up(database_url: str) -> list[str]:
    """Create the schema of the ledger and of each service as they do when starting; the tables each refuses."""
    engine = create_engine(database_url)
    starts: list[Callable[[], Awaitable[None]]] = [
        lambda: create_schema(engine, deliveries.metadata),
        lambda: MeetingStateStore(engine).create_schema(),
        lambda: ReminderStore(engine).create_schema(),
        lambda: create_schema(engine, reminder_answers_metadata),
        lambda: create_schema(engine, digest_metadata),
        lambda: create_schema(engine, ingest_metadata),
        lambda: create_schema(engine, responses_metadata),
    ]
    refused: list[str] = []
    try:
        for start in starts:
            try:
                await start()
            except OutdatedTableError as refusal:
                refused += [line.split(" was made")[0] for line in str(refusal).split("; ") if " was made" in line]
    finally:
        await engine.dispose()
    return refused


@pytest.mark.postgres
async def test_the_upgrade_to_school_scoped_keys_then_to_source_scoped_ones_keeps_meetings_with_their_school(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the documented upgrade is for PostgreSQL")
    await _run_script(database_url, SCHEMA_BEFORE_SCHOOL_SCOPED_KEYS.read_text(encoding="utf-8"))
    await _run_script(database_url, ROWS_BEFORE_SCHOOL_SCOPED_KEYS)

    before = await _refusals_at_start_up(database_url)
    await _run_script(database_url, _upgrade_sql("To school-scoped keys"))
    between = await _refusals_at_start_up(database_url)
    await _run_script(database_url, _upgrade_sql("To source-scoped notification keys"))
    after = await _refusals_at_start_up(database_url)

    assert before == [
        "table deliveries",
        "table invitation_decisions",
        "table invitation_meeting_states",
        "table reminder_invitations",
        "table reminder_meetings",
        "table ingested_events",
    ]
    assert between == ["table deliveries"]
    assert after == []
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            kept = [
                tuple(row)
                for table in ("reminder_meetings", "reminder_invitations", "invitation_meeting_states")
                for row in await connection.exec_driver_sql(f"SELECT school_id, meeting_id FROM {table}")  # noqa: S608 - fixed names
            ]
    finally:
        await engine.dispose()
    assert kept == [("nor-0301-bjolsen", "m-1")] * 3


def _job_as_stored_before(notification_id: str) -> str:
    """A notification waiting in the retry queue, its job JSON as the version before source-scoped keys wrote it."""
    job = DeliveryJob(
        notification_id=notification_id,
        source=SourceEventRef(source="unused", id=MEETING_CREATED, type="meeting.created"),
        school=samples.sample_school(),
        guardian=samples.sample_guardian(1),
        channel=Channel.EMAIL,
        template="meeting_invitation",
        rendered=RenderedNotification(
            template="meeting_invitation",
            language="nb",
            direction="ltr",
            subject="Invitasjon",
            text="Velkommen",
            html="<p>Velkommen</p>",
            sms="Velkommen",
            sms_encoding="GSM-7",
            sms_segments=1,
        ),
        attachments=(),
        first_try=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        deadline=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        not_after=None,
    )
    stored = json.loads(job.to_json())
    del stored["source"]["source"]
    return json.dumps(stored)


def _status_as_stored_before(notification_id: str) -> str:
    report = NotificationStatusReport(
        notification_id=notification_id,
        source_event_source="unused",
        source_event_id=MEETING_CREATED,
        source_event_type="meeting.created",
        school_id="nor-0301-bjolsen",
        guardian_id="g-1002",
        channel=Channel.SMS,
        template="meeting_invitation",
        status="sent",
        occurred_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    ).model_dump(mode="json")
    del report["source_event_source"]
    return json.dumps(report)


@pytest.mark.postgres
async def test_the_upgrade_to_source_scoped_keys_keeps_every_notification_and_what_waits_to_be_sent(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the documented upgrade is for PostgreSQL")
    await _run_script(database_url, SCHEMA_BEFORE_SOURCE_SCOPED_KEYS.read_text(encoding="utf-8"))
    now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    # Notifications as the version before stored them: an invitation sent, one waiting for a retry, one whose status
    # event waits for Kafka, and a reminder the service started itself.
    old_rows = [
        ("a" * 26, MEETING_CREATED, "meeting.created", "g-1001", "email", "meeting_invitation", "queued"),
        ("b" * 26, MEETING_CREATED, "meeting.created", "g-1002", "sms", "meeting_invitation", "sent"),
        ("c" * 26, "r-5f0e", "meeting.reminder", "g-1001", "email", "meeting_reminder", "sent"),
    ]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            for notification_id, event_id, event_type, guardian_id, channel, template, status in old_rows:
                await connection.exec_driver_sql(
                    "INSERT INTO deliveries (notification_id, source_event_id, source_event_type, school_id,"
                    " guardian_id, channel, template, status, attempts, created_at, updated_at)"
                    " VALUES ($1, $2, $3, 'nor-0301-bjolsen', $4, $5, $6, $7, 1, $8, $8)",
                    (notification_id, event_id, event_type, guardian_id, channel, template, status, now),
                )
            await connection.execute(
                sa.insert(delivery_retries).values(
                    notification_id="a" * 26, due_at=now, attempt=2, job=_job_as_stored_before("a" * 26)
                )
            )
            await connection.execute(
                sa.insert(unpublished_statuses).values(
                    notification_id="b" * 26, report=_status_as_stored_before("b" * 26), kept_at=now
                )
            )
    finally:
        await engine.dispose()

    before = await _refusals_at_start_up(database_url)
    await _run_script(database_url, _upgrade_sql("To source-scoped notification keys"))
    after = await _refusals_at_start_up(database_url)

    assert before == ["table deliveries"]
    assert after == []
    async with await DeliveryLedger.connect(database_url) as ledger:
        invitations = await ledger.history(MEETING_CREATED)
        (reminder,) = await ledger.history("r-5f0e")
        async with ledger.engine.connect() as connection:
            (job,) = (await connection.execute(sa.select(delivery_retries.c.job))).scalars()
            (report,) = (await connection.execute(sa.select(unpublished_statuses.c.report))).scalars()
        # The same event id from a real source after the upgrade is another event, not taken for the old one.
        new_source = DeliveryKey(
            "nor-0301-bjolsen", "/visma-flyt/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation"
        )
        claim = await ledger.begin(
            new_source, source_event_type="meeting.created", school_id="nor-0301-bjolsen", language="nb"
        )

    assert [(h.delivery.notification_id, h.delivery.source_event_source) for h in invitations] == [
        ("a" * 26, SOURCE_NOT_RECORDED),
        ("b" * 26, SOURCE_NOT_RECORDED),
    ]
    assert (reminder.delivery.notification_id, reminder.delivery.source_event_source) == ("c" * 26, "/notify/reminders")
    waiting = DeliveryJob.from_json(job)
    assert replace(waiting.source, time=None) == SourceEventRef(SOURCE_NOT_RECORDED, MEETING_CREATED, "meeting.created")
    assert NotificationStatusReport.model_validate_json(report).source_event_source == SOURCE_NOT_RECORDED
    assert claim.should_send
    assert claim.notification_id == notification_id_for(new_source)
