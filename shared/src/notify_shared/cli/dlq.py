"""`notify dlq`: list, show and replay the records the services set aside on the dead-letter topic.

Reading is bounded: the end offsets are taken when the command starts, and it stops once it has caught up to
them (or after `--timeout`), so records dead-lettered meanwhile wait for the next run.

Replaying publishes the original value, key and headers to the original topic, adding the header
`x-notify-replayed-from: <dead-letter partition>:<offset>`. It is safe to repeat: the services dedupe by
CloudEvents source and id through the delivery ledger, and one run never replays the same dead letter twice. A replayed
record that is still invalid is dead-lettered again, with a new reason and the replay header among its headers.
Only this deployment's input topics (the five event topics under `TOPIC_PREFIX`) are replayed to: a dead letter
is a record anyone who could produce to the dead-letter topic may have written, and its `original_topic` must
not become a way to publish to any other topic, another deployment's or an output topic.

The original value may hold personal data: only `show` prints it, and nothing here logs it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import Progress

from notify_shared.cli.base import kafka_options_from_environment
from notify_shared.cli.dlq_output import list_document, print_letter, print_list
from notify_shared.cli.layout import print_json, printable
from notify_shared.contract import INPUT_EVENT_TYPES, EventRejected, NotificationDeadLettered, decode_event
from notify_shared.topics import NOTIFICATION_DEAD_LETTER, Topics

REPLAYED_FROM_HEADER = "x-notify-replayed-from"
"""Added to every replayed record: `<dead-letter partition>:<offset>` of the dead letter it came from."""

# Below this many records a progress bar only flickers.
_PROGRESS_FROM = 20

dlq_app = typer.Typer(help="Dead letters: records a service could not use, kept whole.", no_args_is_help=True)

Bootstrap = Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")]
TopicPrefix = Annotated[str, typer.Option(envvar="TOPIC_PREFIX", help="The deployment's topic prefix.")]
Timeout = Annotated[float, typer.Option(help="Seconds to spend reading the dead-letter topic at most.")]


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the dead-letter topic; `event` is None when it is not a readable dead letter (`problem`)."""

    partition: int
    offset: int
    timestamp_ms: int
    event: NotificationDeadLettered | None
    problem: str | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass
class ReplayReport:
    """Positions (`partition:offset` on the dead-letter topic) replayed, those skipped as already replayed, and
    those refused because their original topic is not one of this deployment's input topics."""

    replayed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def input_topics(topics: Topics) -> frozenset[str]:
    """The topics a replay may publish to: the deployment's input event topics."""
    return frozenset(topics.for_event_type(event_type) for event_type in INPUT_EVENT_TYPES)


def _decode(record: Any) -> DeadLetterRecord:
    accepted = {NOTIFICATION_DEAD_LETTER: NotificationDeadLettered}
    try:
        event = cast(NotificationDeadLettered, decode_event(record.value, record.headers or (), accepted))
    except EventRejected as rejection:
        return DeadLetterRecord(record.partition, record.offset, record.timestamp, None, rejection.reason)
    return DeadLetterRecord(record.partition, record.offset, record.timestamp, event)


async def topic_partitions(bootstrap: str, topic: str, *, client_options: Mapping[str, Any] | None = None) -> list[int]:
    """The partition numbers of `topic`; none when it does not exist (it is not created here).

    `client_options` (here and below): aiokafka security options, see `notify_shared.kafka.kafka_client_options`.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(partition["partition"]) for partition in description.get("partitions", ()))


async def read_dead_letters(
    bootstrap: str, topic: str, *, max_seconds: float = 10.0, client_options: Mapping[str, Any] | None = None
) -> list[DeadLetterRecord]:
    """Every record on `topic` from the beginning up to the end offsets found at the start, in partition order.

    Gives up after `max_seconds` with what it has read; an unknown topic gives an empty list.
    """
    partitions = await topic_partitions(bootstrap, topic, client_options=client_options)
    assigned = [TopicPartition(topic, partition) for partition in partitions]
    if not assigned:
        return []
    # "earliest" as well as seek_to_beginning: assign() starts a reset with the default strategy ("latest"),
    # which can otherwise win over the seek and skip every record.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(client_options or {}),
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        ends: dict[Any, int] = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[DeadLetterRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while loop.time() < deadline:
            positions = {tp: await consumer.position(tp) for tp in assigned}
            pending = [tp for tp in assigned if positions[tp] < ends[tp]]
            if not pending:
                break
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, batch in batches.items():
                records.extend(_decode(record) for record in batch if record.offset < ends[tp])
    finally:
        await consumer.stop()
    return sorted(records, key=lambda letter: (letter.partition, letter.offset))


def _parse_position(text: str) -> tuple[int | None, int] | None:
    """`P:O` or `O` as (partition or None, offset); None if `text` is neither."""
    partition, _, offset = text.rpartition(":")
    if not offset.isdigit() or (partition and not partition.isdigit()):
        return None
    return (int(partition) if partition else None, int(offset))


def select(letters: Sequence[DeadLetterRecord], wanted: str) -> list[DeadLetterRecord]:
    """The dead letters at position `P:O`, at offset `O` on any partition, or with this CloudEvents id.

    An event id matches the dead letter's own id or the id of the event it kept (`source_event_id`).
    """
    position = _parse_position(wanted)
    if position is not None:
        partition, offset = position
        return [
            letter
            for letter in letters
            if letter.offset == offset and (partition is None or letter.partition == partition)
        ]
    return [
        letter
        for letter in letters
        if letter.event is not None and wanted in (letter.event.id, letter.event.data.source_event_id)
    ]


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def replay_headers(letter: DeadLetterRecord) -> list[tuple[str, bytes]]:
    """The original headers, with one `x-notify-replayed-from` naming this dead letter (replacing an older one)."""
    assert letter.event is not None
    kept = [
        (header.key, _b64decode(header.value_base64))
        for header in letter.event.data.original_headers
        if header.key.lower() != REPLAYED_FROM_HEADER
    ]
    return [*kept, (REPLAYED_FROM_HEADER, letter.position.encode())]


async def replay(
    bootstrap: str,
    letters: Iterable[DeadLetterRecord],
    *,
    allowed_topics: Collection[str],
    progress: Progress | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> ReplayReport:
    """Publish each dead letter's original record to its original topic; a dead letter repeated is sent once,
    one whose original topic is not in `allowed_topics` is refused."""
    todo = list(letters)
    report = ReplayReport()
    task = progress.add_task("replaying", total=len(todo)) if progress is not None else None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **(client_options or {}))
    await producer.start()
    try:
        for letter in todo:
            assert letter.event is not None
            if letter.position in report.replayed:
                report.skipped.append(letter.position)
            elif letter.event.data.original_topic not in allowed_topics:
                report.refused.append(letter.position)
            else:
                data = letter.event.data
                key = _b64decode(data.original_key_base64) if data.original_key_base64 is not None else None
                await producer.send_and_wait(
                    data.original_topic,
                    _b64decode(data.original_value_base64),
                    key=key,
                    headers=replay_headers(letter),
                )
                report.replayed.append(letter.position)
            if progress is not None and task is not None:
                progress.advance(task)
    finally:
        await producer.stop()
    return report


def _dead_letters(bootstrap: str, topic_prefix: str, timeout: float) -> tuple[str, list[DeadLetterRecord]]:
    topic = Topics(topic_prefix).dead_letter
    client_options = kafka_options_from_environment()
    return topic, asyncio.run(read_dead_letters(bootstrap, topic, max_seconds=timeout, client_options=client_options))


@dlq_app.command("list")
def list_dead_letters(
    *,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, the most recent.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts (no original values).")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    topic_prefix: TopicPrefix = "",
    timeout: Timeout = 10.0,
) -> None:
    """The dead letters: where each came from, why, and the first error.

    A table when the terminal is wide enough to show every id whole, else one block per dead letter.
    """
    topic, letters = _dead_letters(bootstrap, topic_prefix, timeout)
    shown = sorted(letters, key=lambda letter: letter.timestamp_ms)[-limit:]
    if as_json:
        print_json(list_document(shown, topic, len(letters)))
        return
    out = Console()
    print_list(out, shown, topic)
    out.print(f"{len(shown)} of {len(letters)} dead letter(s)", markup=False)


@dlq_app.command("show")
def show(
    wanted: Annotated[str, typer.Argument(metavar="OFFSET_OR_EVENT_ID", help="P:O, an offset, or a CloudEvents id.")],
    *,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    topic_prefix: TopicPrefix = "",
    timeout: Timeout = 10.0,
) -> None:
    """One dead letter in full: errors, headers, key and the original value (which may hold personal data)."""
    topic, letters = _dead_letters(bootstrap, topic_prefix, timeout)
    found = select(letters, wanted)
    if not found:
        Console(stderr=True).print(f"no dead letter {printable(wanted)} on {topic}", markup=False)
        raise typer.Exit(code=1)
    out = Console()
    for letter in found:
        print_letter(out, letter)


@dlq_app.command("replay")
def replay_dead_letters(
    *,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every readable dead letter.")] = False,
    offsets: Annotated[
        list[str] | None, typer.Option("--offset", help="P:O or an offset (repeatable) of a dead letter to replay.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; publish nothing.")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    topic_prefix: TopicPrefix = "",
    timeout: Timeout = 10.0,
) -> None:
    """Publish dead letters' original records to their original topics again.

    Safe to repeat: services dedupe by CloudEvents source and id, and one run replays each dead letter once. A record
    that is still invalid lands on the dead-letter topic again, with a new reason. Only this deployment's input
    topics are published to; a dead letter naming any other topic is refused and the command ends with code 1.
    """
    if replay_all == bool(offsets):
        raise typer.BadParameter("give either --all or one or more --offset")
    err = Console(stderr=True)
    topic, letters = _dead_letters(bootstrap, topic_prefix, timeout)
    if replay_all:
        chosen = [letter for letter in letters if letter.event is not None]
    else:
        chosen = []
        for wanted in offsets or ():
            if _parse_position(wanted) is None:
                raise typer.BadParameter(f"{wanted!r} is neither P:O nor an offset", param_hint="--offset")
            found = select(letters, wanted)
            if len(found) != 1:
                where = ", ".join(letter.position for letter in found) or "none"
                err.print(f"--offset {wanted} must name one dead letter on {topic}; found {where}", markup=False)
                raise typer.Exit(code=1)
            if found[0].event is None:
                err.print(f"{found[0].position} is not a readable dead letter: {found[0].problem}", markup=False)
                raise typer.Exit(code=1)
            chosen.extend(found)
    out = Console()
    allowed = input_topics(Topics(topic_prefix))
    if dry_run:
        for letter in {letter.position: letter for letter in chosen}.values():
            assert letter.event is not None
            target = printable(letter.event.data.original_topic)
            verb = "would replay" if letter.event.data.original_topic in allowed else "would refuse"
            out.print(
                f"{verb} {letter.position} to {target} "
                f"(source event {printable(letter.event.data.source_event_id or 'unreadable')})",
                markup=False,
            )
        return
    client_options = kafka_options_from_environment()
    with Progress(console=err, transient=True, disable=len(chosen) < _PROGRESS_FROM) as progress:
        report = asyncio.run(
            replay(bootstrap, chosen, allowed_topics=allowed, progress=progress, client_options=client_options)
        )
    for position in report.replayed:
        out.print(f"replayed {position}", markup=False)
    by_position = {letter.position: letter for letter in chosen}
    for position in report.refused:
        event = by_position[position].event
        assert event is not None
        err.print(
            f"refused {position}: its original topic {printable(event.data.original_topic)} is not one of this "
            f"deployment's input topics ({', '.join(sorted(allowed))})",
            markup=False,
        )
    out.print(
        f"{len(report.replayed)} replayed, {len(report.skipped)} skipped (already replayed in this run), "
        f"{len(report.refused)} refused",
        markup=False,
    )
    if report.refused:
        raise typer.Exit(code=1)


__all__ = [
    "REPLAYED_FROM_HEADER",
    "DeadLetterRecord",
    "ReplayReport",
    "dlq_app",
    "input_topics",
    "read_dead_letters",
    "replay",
    "select",
]
