"""The database underneath: SQLite set up for several writers, a schema others extend, an honest history."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from notify_shared.ledger import (
    DeliveryKey,
    DeliveryLedger,
    OutdatedTableError,
    create_engine,
    create_schema,
    delivery_status_history,
    metadata,
    read_transaction,
)


async def test_a_sqlite_database_gets_its_directory_wal_a_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    database = tmp_path / "var" / "lib" / "notify" / "notify.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}", sqlite_busy_timeout_ms=7_000)
    try:
        async with read_transaction(engine) as connection:
            pragmas = [
                (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            ]
    finally:
        await engine.dispose()

    assert pragmas == ["wal", 7_000, 1]
    assert database.exists()


async def test_the_history_refuses_entries_for_notifications_that_do_not_exist(database_url: str) -> None:
    async with await DeliveryLedger.connect(database_url) as ledger:
        with pytest.raises(IntegrityError):
            async with ledger.engine.begin() as connection:
                await connection.execute(
                    sa.insert(delivery_status_history).values(
                        notification_id="0123456789abcdef0123456789",
                        status="sent",
                        at=sa.func.current_timestamp(),
                    )
                )


async def test_services_keep_their_own_tables_in_the_shared_metadata(database_url: str) -> None:
    meetings = sa.Table(
        "test_ledger_meeting_states",
        metadata,
        sa.Column("meeting_id", sa.String(200), primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False),
    )
    try:
        async with await DeliveryLedger.connect(database_url) as ledger:
            async with ledger.engine.begin() as connection:
                await connection.execute(meetings.insert().values(meeting_id="m-42", sequence=0))
            async with read_transaction(ledger.engine) as connection:
                stored = (await connection.execute(sa.select(meetings.c.sequence))).scalar_one()
    finally:
        metadata.remove(meetings)  # the shared metadata outlives this test

    assert stored == 0


async def test_connecting_again_to_an_existing_ledger_keeps_its_rows(database_url: str) -> None:
    key = DeliveryKey(
        "nor-0301-4012", "/visma-flyt/0301", "01JD8X4K2M7Q9W3E5R6T8Y0U1I", "g-1001", "email", "meeting_invitation"
    )
    async with await DeliveryLedger.connect(database_url) as ledger:
        await ledger.begin(key, source_event_type="meeting.created", school_id="nor-0301-4012", language="nb")

    async with await DeliveryLedger.connect(database_url) as reopened:
        assert await reopened.get(key) is not None


async def test_a_ledger_on_an_engine_it_was_given_leaves_the_engine_open(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        async with DeliveryLedger(engine) as ledger:
            assert await ledger.history("01JD8X4K2M7Q9W3E5R6T8Y0U1I") == []
        async with read_transaction(engine) as connection:
            assert (await connection.execute(sa.select(sa.literal(1)))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_ledger_made_before_source_scoped_keys_stops_start_up_naming_the_table(database_url: str) -> None:
    # The deliveries table as versions before source-scoped keys made it: an event id unique within its school.
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "CREATE TABLE deliveries (notification_id VARCHAR(26) PRIMARY KEY, source_event_id VARCHAR(200),"
                " school_id VARCHAR(200), guardian_id VARCHAR(200), channel VARCHAR(20), template VARCHAR(100),"
                " CONSTRAINT uq_deliveries_key UNIQUE (school_id, source_event_id, guardian_id, channel, template))"
            )
        with pytest.raises(OutdatedTableError) as refused:
            await create_schema(engine)
    finally:
        await engine.dispose()

    assert str(refused.value) == (
        "table deliveries was made by an older version: it lacks the unique key"
        " (school_id, source_event_source, source_event_id, guardian_id, channel, template);"
        " see 'Upgrading the database' in docs/operations.md"
    )


async def test_a_table_whose_primary_key_changed_stops_start_up_naming_both_keys(database_url: str) -> None:
    schema = sa.MetaData()
    sa.Table(
        "test_ledger_meetings",
        schema,
        sa.Column("school_id", sa.String(200), primary_key=True),
        sa.Column("meeting_id", sa.String(200), primary_key=True),
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "CREATE TABLE test_ledger_meetings (meeting_id VARCHAR(200) PRIMARY KEY, school_id VARCHAR(200))"
            )
        with pytest.raises(OutdatedTableError, match=r"primary key is \(meeting_id\), this version needs"):
            await create_schema(engine, schema)
    finally:
        await engine.dispose()
