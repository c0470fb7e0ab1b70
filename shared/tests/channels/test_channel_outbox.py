"""The file outbox: what a newcomer finds on disk when no SMTP server or SMS provider is configured."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from notify_shared.channels import (
    EmailChannel,
    FileOutbox,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
)

MakeEmail = Callable[..., OutgoingEmail]
MakeSms = Callable[..., OutgoingSms]

WRITTEN_AT = datetime(2025, 10, 14, 7, 45, tzinfo=UTC)


def outbox_in(directory: Path) -> FileOutbox:
    return FileOutbox(directory, clock=lambda: WRITTEN_AT)


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def read_eml(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


async def test_each_email_becomes_an_eml_file_a_mail_client_can_open(
    tmp_path: Path, make_invitation: MakeEmail
) -> None:
    invitation = make_invitation(1)

    receipt = await outbox_in(tmp_path).send_email(invitation)

    path = tmp_path / "email" / "ntf-3f1c9a7e-0001.eml"
    assert receipt.provider == "outbox"
    assert receipt.provider_message_id == "email/ntf-3f1c9a7e-0001.eml"
    message = read_eml(path)
    assert message["Subject"] == invitation.subject
    assert message["To"] == invitation.to
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "utviklingssamtale om Emma" in plain.get_content()
    (ics_file,) = message.iter_attachments()
    assert ics_file.get_payload(decode=True) == invitation.attachments[0].data


async def test_a_resent_email_replaces_its_file_and_leaves_no_temporary_files(
    tmp_path: Path, make_invitation: MakeEmail
) -> None:
    outbox = outbox_in(tmp_path)
    first = make_invitation(1)
    await outbox.send_email(first)

    await outbox.send_email(replace(first, subject="Oppdatert: utviklingssamtale flyttet til onsdag"))

    assert names_in(tmp_path / "email") == ["ntf-3f1c9a7e-0001.eml"]
    assert (
        read_eml(tmp_path / "email" / "ntf-3f1c9a7e-0001.eml")["Subject"]
        == "Oppdatert: utviklingssamtale flyttet til onsdag"
    )


async def test_an_odd_notification_id_cannot_write_outside_the_outbox(
    tmp_path: Path, make_invitation: MakeEmail
) -> None:
    outbox_dir = tmp_path / "outbox"
    invitation = replace(make_invitation(1), notification_id="../../escaped")

    await outbox_in(outbox_dir).send_email(invitation)

    (written,) = names_in(outbox_dir / "email")
    assert written.endswith(".eml")
    assert names_in(tmp_path) == ["outbox"]


async def test_an_email_to_a_malformed_address_fails_permanently(tmp_path: Path, make_invitation: MakeEmail) -> None:
    with pytest.raises(PermanentDeliveryError) as failure:
        await outbox_in(tmp_path).send_email(make_invitation(1, to="forelder1 at example.no"))

    assert failure.value.reason == "invalid_address"


async def test_each_sms_is_one_json_line_with_who_what_and_when(tmp_path: Path, make_absence_sms: MakeSms) -> None:
    outbox = outbox_in(tmp_path)
    messages = [make_absence_sms(number) for number in range(1, 31)]

    await asyncio.gather(*(outbox.send_sms(sms) for sms in messages))

    lines = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 30
    assert {record["notification_id"] for record in records} == {sms.notification_id for sms in messages}
    first = next(record for record in records if record["notification_id"] == "ntf-sms-0001")
    assert first == {
        "to": "+4790000001",
        "from": "HaugenSkole",
        "text": messages[0].text,
        "notification_id": "ntf-sms-0001",
        "written_at": "2025-10-14T07:45:00+00:00",
    }
    assert "fraværende" in lines[0]  # written as UTF-8 a person can read, not \\u escapes


async def test_the_outbox_stands_in_for_both_channels(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path)
    email_channel: EmailChannel = outbox
    sms_channel: SmsChannel = outbox

    await outbox.aclose()

    assert email_channel.name == sms_channel.name == "outbox"
