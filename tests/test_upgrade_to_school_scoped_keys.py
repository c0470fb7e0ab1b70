"""The upgrade in docs/operations.md ("Upgrading to school-scoped keys") works on a database the previous version
made: the services refuse it before, accept it after, and the rows that matter are kept with their school."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from notify_ingest.store import metadata as ingest_metadata
from notify_invitations.meeting_states import MeetingStateStore
from notify_reminders.store import ReminderStore
from notify_shared.ledger import OutdatedTableError, create_engine, create_schema, deliveries

REPO = Path(__file__).resolve().parents[1]
OLD_SCHEMA = REPO / "tests" / "data" / "schema_before_school_scoped_keys.sql"
OPERATIONS = REPO / "docs" / "operations.md"

# A meeting with a pending reminder, as the previous version stored them.
OLD_ROWS = """
INSERT INTO reminder_meetings VALUES ('m-1', now(), 'Rom 204', now(), false);
INSERT INTO reminder_invitations VALUES ('m-1', 'g-1001', now());
INSERT INTO reminders (reminder_id, meeting_id, school_id, guardian_id, channel, rule_id, starts_at, due_at, state,
    payload, updated_at) VALUES ('r-1', 'm-1', 'nor-0301-bjolsen', 'g-1001', 'email', 'email-2d', now(), now(),
    'pending', '{}', now());
INSERT INTO invitation_meeting_states VALUES ('m-1', 'nor-0301-bjolsen', 0, '{}', false, '[]', now());
"""


def _upgrade_sql() -> str:
    section = OPERATIONS.read_text(encoding="utf-8").split("## Upgrading to school-scoped keys", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the upgrade section has no SQL block"
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
    """Create the schema of the ledger and of each service as they do when starting; what each refuses, if anything."""
    engine = create_engine(database_url)
    starts: list[Callable[[], Awaitable[None]]] = [
        lambda: create_schema(engine, deliveries.metadata),
        lambda: MeetingStateStore(engine).create_schema(),
        lambda: ReminderStore(engine).create_schema(),
        lambda: create_schema(engine, ingest_metadata),
    ]
    refusals = []
    try:
        for start in starts:
            try:
                await start()
            except OutdatedTableError as refusal:
                refusals.append(str(refusal))
    finally:
        await engine.dispose()
    return refusals


@pytest.mark.postgres
async def test_the_documented_upgrade_turns_an_old_database_into_one_the_services_start_on(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the documented upgrade is for PostgreSQL")
    await _run_script(database_url, OLD_SCHEMA.read_text(encoding="utf-8") + OLD_ROWS)

    before = await _refusals_at_start_up(database_url)
    await _run_script(database_url, _upgrade_sql())
    after = await _refusals_at_start_up(database_url)

    assert [line.split(" was made")[0] for line in before] == [
        "table deliveries",
        "table invitation_decisions",
        "table reminder_invitations",
        "table ingested_events",
    ]
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
