"""Where the confirmations of a development talk go: each bookable guardian's email address and phone number.

Kept apart from the booking tables (`notify_responses.talks_store`) so the page, which never needs them, never
reads them. Only guardians who may book are kept, and only for as long as the round's other data
(`notify_responses.talks_retention`); `notify erase` deletes a guardian's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_responses.talks_store import guardians, metadata
from notify_shared.contract import Channel, Recipient
from notify_shared.ledger.database import read_transaction

contacts = sa.Table(
    "talk_contacts",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("guardian_id", sa.String(200), primary_key=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Column("channels", sa.String(50), nullable=False, comment="Comma-separated channels the guardian wants"),
    sa.Column("sms_sender_id", sa.String(11), nullable=False, comment="The school's, from the offer"),
)


@dataclass(frozen=True)
class TalkContact:
    guardian_id: str
    language: str
    email: str | None
    phone: str | None
    channels: tuple[Channel, ...]
    sms_sender_id: str

    def recipient(self) -> Recipient:
        # The service keeps no names and the confirmation greets nobody: the id stands in where a name is required.
        return Recipient(
            guardian_id=self.guardian_id,
            name=self.guardian_id,
            email=self.email,
            phone=self.phone,
            language=self.language,
            channels=self.channels,
            # Only guardians who may book are kept (talks_events.offer_of leaves the others out).
            has_parental_responsibility=True,
        )


async def replace_contacts(
    connection: AsyncConnection, school_id: str, round_id: str, sms_sender_id: str, recipients: Iterable[Recipient]
) -> None:
    """The round's contacts become those of `recipients` (the guardians who may book, as the offer has them)."""
    await connection.execute(
        sa.delete(contacts).where(contacts.c.school_id == school_id, contacts.c.round_id == round_id)
    )
    rows = {
        recipient.guardian_id: {
            "school_id": school_id,
            "round_id": round_id,
            "guardian_id": recipient.guardian_id,
            "email": recipient.email,
            "phone": recipient.phone,
            "channels": ",".join(channel.value for channel in recipient.channels),
            "sms_sender_id": sms_sender_id,
        }
        for recipient in recipients
    }
    if rows:
        await connection.execute(contacts.insert(), list(rows.values()))


async def contacts_of_pupil(engine: AsyncEngine, school_id: str, round_id: str, pupil_id: str) -> list[TalkContact]:
    """The guardians of `pupil_id` who may book, with where to reach them, in guardian id order."""
    query = (
        sa.select(
            guardians.c.guardian_id,
            guardians.c.language,
            contacts.c.email,
            contacts.c.phone,
            contacts.c.channels,
            contacts.c.sms_sender_id,
        )
        .join(
            contacts,
            sa.and_(
                contacts.c.school_id == guardians.c.school_id,
                contacts.c.round_id == guardians.c.round_id,
                contacts.c.guardian_id == guardians.c.guardian_id,
            ),
        )
        .where(guardians.c.school_id == school_id, guardians.c.round_id == round_id, guardians.c.pupil_id == pupil_id)
        .order_by(guardians.c.guardian_id)
    )
    async with read_transaction(engine) as connection:
        rows = (await connection.execute(query)).all()
    return [
        TalkContact(
            guardian_id=row.guardian_id,
            language=row.language,
            email=row.email,
            phone=row.phone,
            channels=tuple(Channel(value) for value in row.channels.split(",") if value),
            sms_sender_id=row.sms_sender_id,
        )
        for row in rows
    ]
