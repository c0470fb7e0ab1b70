"""The status vocabulary and notification ids: the parts of the ledger that other packages build on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from notify_shared.ledger import DeliveryKey, DeliveryStatus, notification_id_for

MEETING_CREATED = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"


def invitation_key(**changes: str) -> DeliveryKey:
    parts = {
        "school_id": "nor-0301-4012",
        "source": "/visma-flyt/0301",
        "source_event_id": MEETING_CREATED,
        "guardian_id": "g-1001",
        "channel": "email",
        "template": "meeting_invitation",
    }
    return DeliveryKey(**(parts | changes))


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (DeliveryStatus.QUEUED, False),
        (DeliveryStatus.SENDING, False),
        (DeliveryStatus.SENT, True),
        (DeliveryStatus.DELIVERED, True),
        (DeliveryStatus.BOUNCED, True),
        (DeliveryStatus.FAILED, True),
        (DeliveryStatus.EXPIRED, True),
        (DeliveryStatus.SUPPRESSED, True),
        (DeliveryStatus.SKIPPED, True),
    ],
)
def test_only_queued_and_sending_are_unfinished(status: DeliveryStatus, final: bool) -> None:
    assert status.is_final is final


def test_statuses_are_the_lowercase_words_published_in_status_events() -> None:
    assert [status.value for status in DeliveryStatus] == [
        "queued",
        "sending",
        "sent",
        "delivered",
        "bounced",
        "failed",
        "expired",
        "suppressed",
        "skipped",
    ]
    assert DeliveryStatus("sent") is DeliveryStatus.SENT


def test_the_status_vocabulary_imports_without_sqlalchemy() -> None:
    # A fresh interpreter: this one has SQLAlchemy loaded already.
    probe = (
        "import sys\n"
        "from notify_shared.ledger.status import DeliveryStatus\n"
        "from notify_shared.ledger import DeliveryKey, notification_id_for\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_notification_id_is_the_same_on_every_redelivery() -> None:
    assert notification_id_for(invitation_key()) == notification_id_for(invitation_key())


def test_notification_id_is_short_lowercase_hex_for_message_ids_and_sms_references() -> None:
    notification_id = notification_id_for(invitation_key())

    assert len(notification_id) == 26
    assert set(notification_id) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    "changed",
    [
        # Another school's event with the same event and guardian ids is another notification, never a repeat.
        {"school_id": "nor-4601-2207"},
        # CloudEvents ids are unique per source only: the same id from another system of the school is another event.
        {"source": "/ist-extens/0301"},
        {"source_event_id": "01JD8X4K2M7Q9W3E5R6T8Y0U1J"},
        {"guardian_id": "g-1002"},
        {"channel": "sms"},
        {"template": "meeting_update"},
    ],
)
def test_each_part_of_the_key_gives_a_different_notification(changed: dict[str, str]) -> None:
    assert notification_id_for(invitation_key(**changed)) != notification_id_for(invitation_key())


def test_ids_containing_separators_do_not_collide() -> None:
    one = DeliveryKey("nor-0301-4012", "/visma-flyt/0301", "evt|g-1", "2", "email", "meeting_invitation")
    other = DeliveryKey("nor-0301-4012", "/visma-flyt/0301", "evt", "g-1|2", "email", "meeting_invitation")

    assert notification_id_for(one) != notification_id_for(other)


def test_a_key_with_an_empty_part_is_refused() -> None:
    with pytest.raises(ValueError, match="guardian_id"):
        invitation_key(guardian_id="")
