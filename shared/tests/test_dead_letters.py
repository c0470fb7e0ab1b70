"""A dead letter can always be written, whatever the refused record's headers held."""

from __future__ import annotations

import base64
from types import SimpleNamespace

from notify_shared.contract import EventRejected
from notify_shared.kafka.dead_letters import dead_letter_for
from notify_shared.kafka.inbound import fit_dead_letter


def test_a_header_key_with_a_lone_surrogate_is_kept_escaped_and_the_dead_letter_is_written() -> None:
    record = SimpleNamespace(
        topic="meeting.created",
        partition=0,
        offset=7,
        timestamp=1_795_680_300_000,
        key=b"m-hostile",
        value=b"{}",
        headers=(("ce_\ud800", b"-1"), ("ce_id", b"e-1")),
    )

    letter = fit_dead_letter(dead_letter_for(record, EventRejected("schema_violation"), service="invitations"))

    assert '"ce_\\\\ud800"' in letter.model_dump_json()
    assert [(header.key, base64.b64decode(header.value_base64)) for header in letter.data.original_headers] == [
        ("ce_\\ud800", b"-1"),
        ("ce_id", b"e-1"),
    ]
