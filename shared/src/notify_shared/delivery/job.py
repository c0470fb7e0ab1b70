"""One rendered notification on its way to one guardian: what a try needs, and what a retry stores.

A retry resends exactly what the first try rendered (same text, same language), and a fallback to the other
channel uses the same rendering, so the job keeps every part of it. It is stored as JSON in the retry queue.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from notify_shared.channels import Attachment
from notify_shared.contract import Channel, Recipient, School
from notify_shared.delivery.plan import SourceEventRef
from notify_shared.rendering import RenderedNotification

_JOB_FORMAT = 1


@dataclass(frozen=True)
class DeliveryJob:
    """A notification that has been claimed and rendered; `attempt` is the try about to be made (1 = first)."""

    notification_id: str
    source: SourceEventRef
    school: School
    guardian: Recipient
    channel: Channel
    template: str
    rendered: RenderedNotification
    attachments: tuple[Attachment, ...]
    first_try: datetime
    """When the notification was first tried, on its first channel; its deadlines count from here."""
    deadline: datetime
    """After this instant the notification is no longer useful and ends as `expired`."""
    not_after: datetime | None
    """The start of the meeting it is about, if any: nothing about a meeting goes out once it has started."""
    attempt: int = 1

    def next_attempt(self) -> DeliveryJob:
        return replace(self, attempt=self.attempt + 1)

    def to_json(self) -> str:
        rendered = self.rendered
        return json.dumps(
            {
                "format": _JOB_FORMAT,
                "notification_id": self.notification_id,
                "source": {
                    "source": self.source.source,
                    "id": self.source.id,
                    "type": self.source.type,
                    "time": _moment(self.source.time),
                },
                "school": self.school.model_dump(mode="json"),
                "guardian": self.guardian.model_dump(mode="json"),
                "channel": self.channel.value,
                "template": self.template,
                "rendered": {
                    "template": rendered.template,
                    "language": rendered.language,
                    "direction": rendered.direction,
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "html": rendered.html,
                    "sms": rendered.sms,
                    "sms_encoding": rendered.sms_encoding,
                    "sms_segments": rendered.sms_segments,
                },
                "attachments": [
                    {
                        "filename": attachment.filename,
                        "content_type": attachment.content_type,
                        "data": base64.b64encode(attachment.data).decode("ascii"),
                    }
                    for attachment in self.attachments
                ],
                "first_try": _moment(self.first_try),
                "deadline": _moment(self.deadline),
                "not_after": _moment(self.not_after),
                "attempt": self.attempt,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> DeliveryJob:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != _JOB_FORMAT:
            raise ValueError(f"unknown delivery job format {data.get('format')!r}")
        source = data["source"]
        return cls(
            notification_id=data["notification_id"],
            source=SourceEventRef(
                source=source["source"], id=source["id"], type=source["type"], time=_parse(source["time"])
            ),
            school=School.model_validate(data["school"]),
            guardian=Recipient.model_validate(data["guardian"]),
            channel=Channel(data["channel"]),
            template=data["template"],
            rendered=RenderedNotification(**data["rendered"]),
            attachments=tuple(
                Attachment(item["filename"], item["content_type"], base64.b64decode(item["data"]))
                for item in data["attachments"]
            ),
            first_try=_required(_parse(data["first_try"])),
            deadline=_required(_parse(data["deadline"])),
            not_after=_parse(data["not_after"]),
            attempt=int(data["attempt"]),
        )


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _required(moment: datetime | None) -> datetime:
    if moment is None:
        raise ValueError("a delivery job needs its first try and deadline")
    return moment
