"""Helpers for scripts/demo: watch the file outbox, post to the ingest, read event.handled.

demo_show.py mark OUTBOX                          print how many emails and SMS the outbox holds now
demo_show.py wait OUTBOX MARK EMAILS SMS [WORD]   wait (60 s at most) until that many more have arrived
                                                  (SMS counted only when they contain WORD), then show them
demo_show.py post URL KEY FILE...                 POST CloudEvents to the ingest, one after the other
demo_show.py absence FILE LESSON EVENT_FILE       write an absence.noted like FILE for another lesson
demo_show.py handled BOOTSTRAP PREFIX N ID...     show the first N reports of what the services did with these
                                                  events (meeting events are handled by two services)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import sys
import time
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

WAIT_SECONDS = 60


def _emails(outbox: Path) -> list[Path]:
    return sorted((outbox / "email").glob("*.eml"), key=lambda path: path.stat().st_mtime)


def _texts(outbox: Path) -> list[dict[str, Any]]:
    path = outbox / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mark(outbox: Path) -> None:
    print(f"{len(_emails(outbox))}:{len(_texts(outbox))}")


def _show_email(path: Path) -> None:
    with path.open("rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    attachments = [part.get_filename() for part in message.iter_attachments()]
    print(f"  To: {message['To']}")
    attached = f"   (attached: {', '.join(map(str, attachments))})" if attachments else ""
    print(f"  Subject: {message['Subject']}{attached}")
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    print("    " + "\n    ".join(str(text).strip().splitlines()))
    print(f"  (the whole email: {path})")


def wait(outbox: Path, marked: str, emails: int, texts: int, word: str | None) -> int:
    emails_before, texts_before = (int(part) for part in marked.split(":"))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        new_emails = _emails(outbox)[emails_before:]
        new_texts = [text for text in _texts(outbox)[texts_before:] if word is None or word in text["text"]]
        if len(new_emails) >= emails and len(new_texts) >= texts:
            break
        if time.monotonic() > deadline:
            print(f"  only {len(new_emails)} email(s) and {len(new_texts)} SMS after {WAIT_SECONDS} s", file=sys.stderr)
            return 1
        time.sleep(0.2)
    if new_emails:
        print(f"  {len(new_emails)} email(s); the first:")
        _show_email(new_emails[0])
    if new_texts:
        first = new_texts[0]
        more = f" (and {len(new_texts) - 1} more)" if len(new_texts) > 1 else ""
        print(f"  SMS from {first['from']} to {first['to']}{more}:")
        print("    " + "\n    ".join(first["text"].splitlines()))
    return 0


def post(url: str, key: str, files: list[Path]) -> int:
    for file in files:
        request = urllib.request.Request(  # noqa: S310 - the demo's own ingest on 127.0.0.1
            url,
            data=file.read_bytes(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents+json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
            print(f"  ingest answered {response.status} {response.read().decode()}")
    return 0


def absence(template: Path, lesson: int, out: Path) -> int:
    event = json.loads(template.read_text(encoding="utf-8"))
    event["id"] = str(uuid.uuid4())
    subjects = {1: "Matematikk", 2: "Norsk", 3: "Engelsk"}
    event["data"]["lessons"] = [{"period": lesson, "subject": subjects.get(lesson, "Naturfag")}]
    out.write_text(json.dumps(event, ensure_ascii=False), encoding="utf-8")
    return 0


async def _handled(bootstrap: str, topic: str, wanted: set[str], expected: int) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415 - only this command needs Kafka

    from notify_shared.cli.dlq import topic_partitions  # noqa: PLC0415 - as above

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        # Assigned by hand from the start of every partition: no consumer group to join, nothing committed.
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:
            partitions = await topic_partitions(bootstrap, topic)
        assigned = [TopicPartition(topic, partition) for partition in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(json.loads(record.value)["data"] for record in records if record.value)
            if sum(report["source_event_id"] in wanted for report in found) >= expected:
                break
    finally:
        await consumer.stop()
    return [report for report in found if report["source_event_id"] in wanted]


def handled(bootstrap: str, prefix: str, expected: int, event_ids: list[str]) -> int:
    reports = asyncio.run(_handled(bootstrap, f"{prefix}event.handled", set(event_ids), expected))
    if not reports:
        print(f"  no event.handled report within {WAIT_SECONDS} s", file=sys.stderr)
        return 1
    for report in reports:
        counts = ", ".join(f"{status} {count}" for status, count in sorted(report["notifications"].items()))
        detail = " ".join(
            part
            for part in (
                report.get("reason") or "",
                f"({counts})" if counts else "",
                f"{report['scheduled']} kept for later" if report["scheduled"] else "",
            )
            if part
        )
        print(f"  {report['source_event_type']:<17} {report['service']:<12} {report['outcome']} {detail}")
    return 0


def main(arguments: list[str]) -> int:
    command, *rest = arguments
    if command == "mark":
        mark(Path(rest[0]))
        return 0
    if command == "wait":
        outbox, marked, emails, texts, *word = rest
        return wait(Path(outbox), marked, int(emails), int(texts), word[0] if word else None)
    if command == "post":
        return post(rest[0], rest[1], [Path(file) for file in rest[2:]])
    if command == "absence":
        return absence(Path(rest[0]), int(rest[1]), Path(rest[2]))
    if command == "handled":
        return handled(rest[0], rest[1], int(rest[2]), rest[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
