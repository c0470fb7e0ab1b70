"""Engines and schema for the notify database: a SQLite file by default, PostgreSQL when the URL says so.

`metadata` is shared: the ledger's tables live in it, and services may add their own (e.g. meeting state) so
that one URL, one schema call and one backup cover everything a service stores.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite writer waits for another writer before giving up with "database is locked"."""

# Names for constraints and indexes that do not name themselves, so later migrations can refer to them.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""The MetaData of every table in the notify database; add your tables to it and call `create_schema`."""

_READ_ONLY_OPTION = "notify_read_only"

# The schemes operators write (libpq's, Heroku's, plain SQLite) mapped to the async drivers the services run on;
# without this SQLAlchemy would pick a sync driver that is not installed and fail deep in a traceback.
_ASYNC_DRIVER_OF_SCHEME = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def async_database_url(url: str) -> str:
    """`url` with the async driver the services use: `postgresql://` and `postgres://` become
    `postgresql+asyncpg://`, `sqlite://` becomes `sqlite+aiosqlite://`; the rest is kept as written.

    Raises ValueError, naming the schemes accepted, for any other database or driver. The message never repeats
    the URL, which may hold a password.
    """
    scheme, separator, rest = url.partition("://")
    driver = _ASYNC_DRIVER_OF_SCHEME.get(scheme.lower()) if separator else None
    if driver is None:
        raise ValueError(
            "not a database URL this service can use; write postgresql://…, postgres://…, "
            "postgresql+asyncpg://… or sqlite+aiosqlite:///path"
        )
    normalised = f"{driver}://{rest}"
    try:
        make_url(normalised)
    except ArgumentError:
        raise ValueError("not a well-formed database URL") from None
    return normalised


DatabaseUrl = Annotated[str, AfterValidator(async_database_url)]
"""A database URL setting: accepted in the forms `async_database_url` knows, stored with the async driver."""

# Any constant works as long as nothing else in the database uses it for pg_advisory_xact_lock.
_SCHEMA_LOCK_KEY = 0x6E6F74696679  # "notify"


def create_engine(url: str, *, sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An async engine for `url` (`sqlite+aiosqlite:///path.db` or `postgresql+asyncpg://user@host:port/db`;
    the driver-less forms `async_database_url` accepts work too).

    For SQLite it creates the file's directory and sets up every connection for several writers (processes or
    engines) on one file: WAL journal, a busy timeout and foreign keys. `engine.begin()` then starts with
    `BEGIN IMMEDIATE`, taking the write lock up front; use `read_transaction` for reads that should not.
    The caller owns the engine and must `await engine.dispose()` it.
    """
    parsed = make_url(async_database_url(url))
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a pooled connection that died in a database restart is replaced instead of failing a send.
        return create_async_engine(parsed, pool_pre_ping=True)
    _create_sqlite_directory(parsed)
    # One connection: SQLite has one writer anyway, and connections of one process competing for its lock
    # lose time in SQLite's busy handler, which sleeps in growing steps (measured: more events at once made
    # the invitations service no faster). With one connection, transactions queue in asyncio and run back to
    # back. Other processes on the same file still wait through the busy timeout.
    engine = create_async_engine(parsed, pool_size=1, max_overflow=0)
    _configure_sqlite(engine.sync_engine, sqlite_busy_timeout_ms)
    return engine


class OutdatedTableError(RuntimeError):
    """A table made by an older version has keys this version cannot work with; the operator must upgrade it."""


UPGRADE_GUIDE = "see 'Upgrading the database' in docs/operations.md"


async def create_schema(engine: AsyncEngine, schema: sa.MetaData = metadata) -> None:
    """Create the tables of `schema` that do not exist yet. Safe to call from several replicas at once.

    A table that exists already must have the primary key and unique keys `schema` declares; otherwise
    `OutdatedTableError` names the table and what to do, so a service never runs on keys that mix up schools.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together would race between "table missing?" and CREATE TABLE; the loser would
            # fail on a duplicate catalog entry. The lock lasts until this transaction ends.
            await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
        # On SQLite BEGIN IMMEDIATE (see _configure_sqlite) already serialises concurrent schema creation.
        await connection.run_sync(_refuse_outdated_tables, schema)
        await connection.run_sync(schema.create_all)


def _refuse_outdated_tables(connection: Connection, schema: sa.MetaData) -> None:
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    # Every outdated table in one line, so the operator upgrades them all in one go.
    outdated = [
        f"table {table.name} was made by an older version: {problem}"
        for table in schema.sorted_tables
        if table.name in existing and (problem := _key_problem(inspector, table)) is not None
    ]
    if outdated:
        message = f"{'; '.join(outdated)}; {UPGRADE_GUIDE}"
        # Logged as well as raised: the start-up traceback buries the message under framework frames.
        logger.error("%s", message)
        raise OutdatedTableError(message)


def _key_problem(inspector: sa.Inspector, table: sa.Table) -> str | None:
    """How the stored table's primary or unique keys differ from `table`'s, or None when they agree."""
    declared_key = [column.name for column in table.primary_key.columns]
    stored_key = inspector.get_pk_constraint(table.name)["constrained_columns"] or []
    if set(declared_key) != set(stored_key):
        return f"its primary key is ({', '.join(stored_key)}), this version needs ({', '.join(declared_key)})"
    stored_unique = {frozenset(unique["column_names"]) for unique in inspector.get_unique_constraints(table.name)}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            columns = [column.name for column in constraint.columns]
            if frozenset(columns) not in stored_unique:
                return f"it lacks the unique key ({', '.join(columns)})"
    return None


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction for reading only: on SQLite it starts deferred, so it neither waits for nor blocks
    writers."""
    async with engine.connect() as connection:
        await connection.execution_options(**{_READ_ONLY_OPTION: True})
        async with connection.begin():
            yield connection


def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return  # in-memory or URI-style databases: no plain path to create
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _switch_to_wal(cursor: Any, busy_timeout_ms: int) -> None:
    # The switch needs the file to itself, and when several processes open a new file at once SQLite reports
    # "database is locked" at once instead of calling the busy handler; so wait and try again, within the same
    # budget a busy writer gets.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        else:
            return


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _connection_record: Any) -> None:
        # Take BEGIN away from the sqlite3 module: its legacy mode starts a transaction only at the first
        # write, so a SELECT-then-UPDATE could fail with SQLITE_BUSY at once instead of waiting. on_begin
        # below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Writers queue for up to this long instead of failing with "database is locked". Set first, so
            # the journal-mode switch below waits too.
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            # WAL: readers and the one writer do not block each other; the setting persists in the file.
            _switch_to_wal(cursor, busy_timeout_ms)
            # Off by default in SQLite; the history table relies on it.
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            # Take the write lock now, while the busy timeout can still wait for it. A deferred transaction
            # that read first and writes later gets SQLITE_BUSY without waiting if another writer committed
            # in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def utc_from_db(moment: datetime) -> datetime:
    """A time read back from the database as aware UTC: SQLite keeps no offset, and only UTC is ever written."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_ignoring_conflicts(table: sa.Table, dialect_name: str) -> sa.Insert:
    """INSERT … ON CONFLICT DO NOTHING into `table`: the atomic "create if absent", in each dialect's own form."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"runs on SQLite or PostgreSQL, not {dialect_name}")
