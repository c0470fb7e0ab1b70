"""A responses database made before the automatic SMS answers keeps working: the school's sender id is added."""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa

from notify_responses.store import MeetingRow, ResponseStore, meetings
from notify_shared.ledger.database import create_engine
from notify_shared.samples import SAMPLE_NOW


async def test_a_meetings_table_without_the_sender_id_gets_it_and_keeps_its_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    earlier = sa.MetaData()
    sa.Table(
        meetings.name,
        earlier,
        *(
            sa.Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
            for column in meetings.columns
            if column.name != "sms_sender_id"
        ),
    )
    async with engine.begin() as connection:
        await connection.run_sync(earlier.create_all)
    await engine.dispose()
    starts = SAMPLE_NOW.astimezone(UTC) + timedelta(days=7)
    meeting = MeetingRow(
        school_id="nor-0301-bjolsen",
        meeting_id="m-1",
        school_name="Bjølsen skole",
        title="Foreldremøte 7B",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        location="Rom 204",
        timezone="Europe/Oslo",
        written_standard="nb",
        cancelled=False,
        sms_sender_id="Bjolsen",
    )

    store = await ResponseStore.connect(database_url)
    try:
        await store.save_meeting(meeting, [], event_time=SAMPLE_NOW)
        async with store.engine.connect() as connection:
            sender = await connection.scalar(sa.select(meetings.c.sms_sender_id))
    finally:
        await store.aclose()
    # Connecting again finds the column there and changes nothing.
    await (await ResponseStore.connect(database_url)).aclose()

    assert sender == "Bjolsen"
