"""The `notify` app and its first commands: publish events, inspect the contract, preview notifications.

Services are started with `faststream run <package>.app:create_app --factory`, not from here.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from rich.console import Console

from notify_shared import samples
from notify_shared.contract import (
    INPUT_EVENT_TYPES,
    CloudEvent,
    encode_binary,
    encode_structured,
    partition_key,
)
from notify_shared.contract.kafka_codec import describe_validation_error
from notify_shared.contract.schemas import write_schemas
from notify_shared.kafka.broker import kafka_client_options
from notify_shared.rendering import (
    RenderedNotification,
    available_languages,
    catalog_language,
    choose_language,
    template_names,
)
from notify_shared.rendering.previews import sample_context
from notify_shared.rendering.renderer import render_notification
from notify_shared.settings import ServiceSettings, load_settings
from notify_shared.topics import (
    ABSENCE_NOTED,
    MEETING_CANCELLED,
    MEETING_CREATED,
    MEETING_UPDATED,
    MESSAGE_POSTED,
    TALKS_OFFERED,
    Topics,
)

app = typer.Typer(
    help="School–home notifications: publish events, inspect the event contract, preview notifications.",
    no_args_is_help=True,
)
contract_app = typer.Typer(help="The event contract.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
console = Console(stderr=True, soft_wrap=True)

DEFAULT_SCHEMA_DIR = Path("docs/contract/schemas")
DEFAULT_PREVIEW_DIR = Path(".local/preview")


class ContentMode(StrEnum):
    STRUCTURED = "structured"
    BINARY = "binary"


def _sample(event_type: str, meeting_id: str, *, urgent: bool = False) -> CloudEvent:
    """A sample event set now: a meeting `meeting_id` (the update moves it to another room, so guardians hear of
    it), a teacher's message (`urgent` or for the digest) or a pupil's absence today."""
    now = datetime.now(UTC)
    if event_type == MESSAGE_POSTED:
        return samples.message_posted(urgent=urgent, time=now)
    if event_type == ABSENCE_NOTED:
        return samples.absence_noted(time=now)
    if event_type == TALKS_OFFERED:
        # Open for booking from now, so the booking page takes bookings at once.
        return samples.talks_offered(opens_at=now, time=now)
    # A week ahead of today, so the services do not expire notifications about a meeting that has started.
    meeting = samples.upcoming_meeting(meeting_id, now)
    if event_type == MEETING_UPDATED:
        moved = meeting.model_copy(update={"location": "Gymsalen, Bjølsen skole"})
        return samples.meeting_updated(meeting=moved, time=datetime.now(UTC))
    if event_type == MEETING_CANCELLED:
        return samples.meeting_cancelled(meeting=meeting, time=datetime.now(UTC))
    return samples.meeting_created(meeting=meeting, time=datetime.now(UTC))


SAMPLE_TYPES = (MEETING_CREATED, MEETING_UPDATED, MEETING_CANCELLED, MESSAGE_POSTED, ABSENCE_NOTED, TALKS_OFFERED)


def _load_event(path: Path) -> CloudEvent:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise typer.BadParameter(f"cannot read {path}: {error}") from None
    event_type = document.get("type") if isinstance(document, dict) else None
    model = INPUT_EVENT_TYPES.get(str(event_type))
    if model is None:
        raise typer.BadParameter(f"type must be one of {sorted(INPUT_EVENT_TYPES)}, not {event_type!r}")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems = "\n  ".join(describe_validation_error(error))
        raise typer.BadParameter(f"the event breaks the contract:\n  {problems}") from None


def kafka_options_from_environment() -> dict[str, Any]:
    """aiokafka security options from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_CAFILE, read as the
    services read them; an invalid setting stops the command with a message naming it."""
    return kafka_client_options(load_settings(ServiceSettings))


async def _publish(
    event: CloudEvent, bootstrap: str, topics: Topics, mode: ContentMode, *, client_options: dict[str, Any]
) -> str:
    value, headers = encode_binary(event) if mode is ContentMode.BINARY else encode_structured(event)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **client_options)
    await producer.start()
    try:
        topic = topics.for_event_type(event.type)
        await producer.send_and_wait(topic, value, key=partition_key(event), headers=headers)
    finally:
        await producer.stop()
    return topic


@app.command()
def publish(
    file: Annotated[Path | None, typer.Argument(help="A CloudEvent as JSON (structured form).")] = None,
    *,
    sample: Annotated[
        str | None, typer.Option(help=f"Publish a built-in sample instead: one of {', '.join(SAMPLE_TYPES)}.")
    ] = None,
    meeting_id: Annotated[
        str, typer.Option(help="The meeting a sample is about; use the same id to update or cancel it.")
    ] = "m-2026-7b-foreldremote",
    urgent: Annotated[
        bool, typer.Option("--urgent", help="A message.posted sample that is sent at once, not in the digest.")
    ] = False,
    mode: Annotated[ContentMode, typer.Option(help="CloudEvents content mode on Kafka.")] = ContentMode.STRUCTURED,
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS")] = "127.0.0.1:9092",
    topic_prefix: Annotated[str, typer.Option(envvar="TOPIC_PREFIX")] = "",
) -> None:
    """Validate an event against the contract and publish it to its topic."""
    if (file is None) == (sample is None):
        raise typer.BadParameter("give either FILE or --sample")
    if sample is not None:
        if sample not in SAMPLE_TYPES:
            raise typer.BadParameter(f"--sample must be one of {', '.join(SAMPLE_TYPES)}")
        event = _sample(sample, meeting_id, urgent=urgent)
    else:
        assert file is not None
        event = _load_event(file)
    client_options = kafka_options_from_environment()
    topic = asyncio.run(_publish(event, bootstrap, Topics(topic_prefix), mode, client_options=client_options))
    console.print(f"published {event.type} [bold]{event.id}[/] to {topic} ({mode.value} mode)")
    print(event.id)


@app.command("sample")
def sample_event(
    event_type: Annotated[str, typer.Argument(help=f"One of {', '.join(SAMPLE_TYPES)}.")],
    *,
    urgent: Annotated[
        bool, typer.Option("--urgent", help="A message.posted sample that is sent at once, not in the digest.")
    ] = False,
) -> None:
    """Print a realistic sample event as JSON, to start from when integrating."""
    if event_type not in SAMPLE_TYPES:
        raise typer.BadParameter(f"one of {', '.join(SAMPLE_TYPES)}")
    print(_sample(event_type, "m-2026-7b-foreldremote", urgent=urgent).model_dump_json(indent=2, exclude_none=True))


@contract_app.command("write")
def contract_write(
    directory: Annotated[Path, typer.Option(help="Where the JSON Schemas go.")] = DEFAULT_SCHEMA_DIR,
) -> None:
    """Regenerate the JSON Schema of every event (commit the result)."""
    for path in write_schemas(directory):
        console.print(f"wrote {path}")


def _preview_files(rendered: RenderedNotification) -> dict[str, str]:
    # What each file holds is what one channel sends; the SMS file starts with what it costs.
    return {
        "subject.txt": rendered.subject + "\n",
        "body.txt": rendered.text,
        "body.html": rendered.html,
        "sms.txt": f"{rendered.sms_encoding}, {rendered.sms_segments} segment(s)\n{rendered.sms}\n",
    }


@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="A notification template, e.g. meeting_invitation.")],
    *,
    lang: Annotated[str, typer.Option("--lang", help="The guardian's language tag, e.g. nb, pl, ar.")] = "nb",
    out: Annotated[
        Path | None, typer.Option(help="Where the files go; default .local/preview/<template>-<lang>/.")
    ] = None,
    school_standard: Annotated[str, typer.Option(help="The school's written standard: nb or nn.")] = "nb",
    fallback: Annotated[
        bool,
        typer.Option(
            "--fallback",
            help="Render what a guardian with a language that has no catalog would get (the school's "
            "standard), instead of stopping.",
        ),
    ] = False,
) -> None:
    """Render a notification with sample data: subject, text and HTML e-mail, and SMS, one file each."""
    if template not in template_names():
        raise typer.BadParameter(f"one of {', '.join(sorted(template_names()))}", param_hint="TEMPLATE")
    if catalog_language(lang) is None and not fallback:
        # A preview is for checking a translation; one that quietly showed bokmål would pass for it.
        console.print(
            f"[red]no catalog for {lang!r}[/]: a guardian with it gets "
            f"{choose_language(lang, school_standard)!r}. Catalogs: {', '.join(sorted(available_languages()))}. "
            "Use --fallback to preview that anyway."
        )
        raise typer.Exit(code=2)
    rendered = render_notification(template, lang, school_standard, sample_context(template, lang))
    directory = out if out is not None else DEFAULT_PREVIEW_DIR / f"{template}-{lang}"
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in _preview_files(rendered).items():
        (directory / name).write_text(content, encoding="utf-8")
        print(directory / name)
    console.print(
        f"{template} in {rendered.language} ({rendered.direction}); SMS {rendered.sms_encoding}, "
        f"{rendered.sms_segments} segment(s). Open the e-mail in a browser:"
    )
    print((directory / "body.html").resolve().as_uri())
