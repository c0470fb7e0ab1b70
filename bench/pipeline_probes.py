"""The pipeline benchmark's reference measurements, each run by bench/pipeline_bench.py in a fresh process.

    python bench/pipeline_probes.py kafka  --bootstrap HOST:PORT --topic T --expected N --out FILE
    python bench/pipeline_probes.py smtp   --port P --count N --connections 8 --out FILE
    python bench/pipeline_probes.py sms    --url URL --count N --concurrency 8 --out FILE
    python bench/pipeline_probes.py naive  --port P --count N --rendered-count M --out FILE

- kafka: the ceiling of consumption. A plain aiokafka consumer in a group of its own reads the same events from
  the beginning and does no work with them (no decoding, no commits).
- smtp: the SMTP sink's ceiling. A pool of persistent aiosmtplib sessions sends realistic invitation emails
  (rendered once, with the service's own templates and MIME builder; only the Message-ID changes) as fast as
  the sink accepts them.
- sms: the SMS sink's ceiling. Concurrent httpx requests over keep-alive connections, with the service's JSON
  body and an Idempotency-Key each.
- naive: the naive peer, as most hand-written senders do it: smtplib, one new SMTP connection per email,
  one email after the other. First with the email rendered beforehand (sending only), then rendering each one
  with the same templates before sending it.

Each writes its figures as JSON to `--out`, including its own CPU time and peak RSS; every loop is bounded by
`--time-limit` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SENDER = "no-reply@notify.invalid"
"""The envelope sender of the sample emails, as the service's default EMAIL_SENDER."""
MESSAGE_ID_PLACEHOLDER = b"@@MESSAGE-ID@@"


def own_usage() -> dict[str, float]:
    """CPU time and peak RSS of this process. VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a
    child would report its parent's peak if that was higher."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    status = Path("/proc/self/status").read_text()
    peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": peak}


# ----------------------------------------------------------------------------------------- a realistic email


@dataclass(frozen=True)
class SampleEmail:
    """One invitation email as the service sends it, and how to render another one like it."""

    recipient: str
    template: bytes
    """The flattened email with the Message-ID replaced by `MESSAGE_ID_PLACEHOLDER`."""
    render_one: Callable[[str], bytes]
    """Render and build a fresh email for a notification id, as the service does for every email."""

    def with_message_id(self, key: str) -> bytes:
        return self.template.replace(MESSAGE_ID_PLACEHOLDER, f"<{key}@notify.invalid>".encode())


def sample_email() -> SampleEmail:
    """The first email of a benchmark event: the sample meeting one week ahead, rendered in bokmål with its .ics."""
    # Imported here: the Kafka and SMS probes need none of it.
    from notify_invitations.meeting_states import DecisionKind, MeetingDecision  # noqa: PLC0415
    from notify_invitations.planning import PlanningContext, plan_notifications  # noqa: PLC0415
    from notify_shared import samples  # noqa: PLC0415
    from notify_shared.channels.base import OutgoingEmail  # noqa: PLC0415
    from notify_shared.channels.mime import build_message  # noqa: PLC0415
    from notify_shared.contract import Channel  # noqa: PLC0415
    from notify_shared.rendering import render_notification  # noqa: PLC0415

    now = datetime.now(UTC)
    guardians = [samples.sample_guardian(1, guardian_id="g-probe-0", channels=[Channel.EMAIL, Channel.SMS])]
    event = samples.meeting_created(meeting=samples.upcoming_meeting("m-probe", now), recipients=guardians, time=now)
    decision = MeetingDecision(
        kind=DecisionKind.INVITE, sequence=1, changes=frozenset(), previous=None, newly_invited=frozenset()
    )
    plan = next(
        plan
        for plan in plan_notifications(event, decision, PlanningContext(organizer_email=SENDER, stamp=now))
        if plan.channel is Channel.EMAIL
    )
    guardian = plan.guardian
    assert guardian.email is not None

    def render_one(notification_id: str) -> bytes:
        rendered = render_notification(plan.template, guardian.language, plan.school.written_standard, plan.context)
        message = build_message(
            OutgoingEmail(
                to=guardian.email or "",
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                sender=f"Skolevarsel <{SENDER}>",
                attachments=plan.attachments,
                notification_id=notification_id,
            )
        )
        return message.as_bytes()

    flattened = render_one("probe")
    template = flattened.replace(b"<probe@notify.invalid>", MESSAGE_ID_PLACEHOLDER)
    assert MESSAGE_ID_PLACEHOLDER in template, "the sample email has no Message-ID to replace"
    return SampleEmail(recipient=guardian.email, template=template, render_one=render_one)


# ---------------------------------------------------------------------------------------------------- probes


async def kafka_ceiling(bootstrap: str, topic: str, expected: int, time_limit: float) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    started = time.perf_counter()
    await consumer.start()
    count = 0
    size = 0
    first_poll = time.perf_counter()  # the first getmany() joins the group, then fetches
    first_record: float | None = None
    deadline = started + time_limit
    try:
        while count < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                if first_record is None:
                    first_record = time.perf_counter()
                count += len(records)
                size += sum(len(record.value or b"") for record in records)
        last = time.perf_counter()
    finally:
        await consumer.stop()
    first_record = first_record if first_record is not None else last
    return {
        "events": count,
        "expected": expected,
        "bytes": size,
        "seconds_from_start": last - started,
        "seconds_from_first_poll": last - first_poll,
        "seconds_first_to_last_record": last - first_record,
        # The ceiling: from the first poll (group join included, as a service pays it too) to the last record.
        # First record to last is shown as well, but for a small N it is one or two fetches and means little.
        "events_per_second": count / max(last - first_poll, 1e-9),
        "events_per_second_first_to_last_record": count / max(last - first_record, 1e-9),
    }


async def smtp_ceiling(port: int, count: int, connections: int, time_limit: float) -> dict[str, Any]:
    import aiosmtplib  # noqa: PLC0415

    email = sample_email()
    work = iter(range(count))
    sent = 0
    failed = 0
    deadline = time.perf_counter() + time_limit

    async def session() -> None:
        nonlocal sent, failed
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        try:
            for number in work:
                if time.perf_counter() > deadline:
                    break
                try:
                    await client.sendmail(SENDER, [email.recipient], email.with_message_id(f"blast-{number}"))
                    sent += 1
                except aiosmtplib.SMTPException:
                    failed += 1
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(connections)))
    seconds = time.perf_counter() - started
    return {
        "sent": sent,
        "failed": failed,
        "connections": connections,
        "email_bytes": len(email.template),
        "seconds": seconds,
        "messages_per_second": sent / max(seconds, 1e-9),
    }


async def sms_ceiling(url: str, count: int, concurrency: int, time_limit: float) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    work = iter(range(count))
    sent = 0
    failed = 0
    deadline = time.perf_counter() + time_limit
    # The body the service's webhook channel sends (notify_shared.channels.sms_webhook), with a rendered text.
    text = "Foreldremøte 7B onsdag 3. desember kl. 18.00–19.30, Rom 204, Bjølsen skole. " * 3
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=30)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0)) as client:

        async def worker() -> None:
            nonlocal sent, failed
            for number in work:
                if time.perf_counter() > deadline:
                    break
                key = f"blast-{number}"
                body = {"to": "+4790000001", "from": "Bjolsen", "text": text, "reference": key}
                response = await client.post(url, json=body, headers={"Idempotency-Key": key})
                if response.status_code == 200:
                    sent += 1
                else:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "sent": sent,
        "failed": failed,
        "concurrency": concurrency,
        "seconds": seconds,
        "messages_per_second": sent / max(seconds, 1e-9),
    }


def naive_peer(port: int, count: int, rendered_count: int, time_limit: float) -> dict[str, Any]:
    email = sample_email()

    def send(message: bytes) -> None:
        # A new connection per email: connect, EHLO, MAIL, RCPT, DATA, QUIT.
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(SENDER, [email.recipient], message)

    def run(total: int, make: Callable[[int], bytes]) -> dict[str, float]:
        sent = 0
        cpu_before = own_usage()["cpu_seconds"]
        started = time.perf_counter()
        deadline = started + time_limit / 2
        for number in range(total):
            if time.perf_counter() > deadline:
                break
            send(make(number))
            sent += 1
        seconds = time.perf_counter() - started
        return {
            "sent": sent,
            "seconds": seconds,
            "emails_per_second": sent / max(seconds, 1e-9),
            "ms_per_email": 1000 * seconds / max(sent, 1),
            "client_cpu_ms_per_email": 1000 * (own_usage()["cpu_seconds"] - cpu_before) / max(sent, 1),
        }

    email.render_one("warm-up")  # the first render loads the catalogs and compiles the templates
    return {
        "email_bytes": len(email.template),
        "prerendered": run(count, lambda number: email.with_message_id(f"naive-{number}")),
        "rendering_each": run(rendered_count, lambda number: email.render_one(f"naive-rendered-{number}")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["kafka", "smtp", "sms", "naive"])
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds before the probe stops (600)")
    parser.add_argument("--bootstrap", help="kafka: the broker")
    parser.add_argument("--topic", help="kafka: the topic to read")
    parser.add_argument("--expected", type=int, default=0, help="kafka: records to read")
    parser.add_argument("--port", type=int, help="smtp, naive: the SMTP sink's port")
    parser.add_argument("--url", help="sms: the SMS sink's URL")
    parser.add_argument("--count", type=int, default=10_000, help="smtp, sms, naive: messages to send")
    parser.add_argument("--rendered-count", type=int, default=300, help="naive: emails rendered one by one")
    parser.add_argument("--connections", type=int, default=8, help="smtp: persistent sessions")
    parser.add_argument("--concurrency", type=int, default=8, help="sms: requests in flight")
    args = parser.parse_args()
    figures: dict[str, Any]
    match args.probe:
        case "kafka":
            figures = asyncio.run(kafka_ceiling(args.bootstrap, args.topic, args.expected, args.time_limit))
        case "smtp":
            figures = asyncio.run(smtp_ceiling(args.port, args.count, args.connections, args.time_limit))
        case "sms":
            figures = asyncio.run(sms_ceiling(args.url, args.count, args.concurrency, args.time_limit))
        case _:
            figures = naive_peer(args.port, args.count, args.rendered_count, args.time_limit)
    args.out.write_text(json.dumps(figures | {"process": own_usage()}, indent=2))


if __name__ == "__main__":
    main()
