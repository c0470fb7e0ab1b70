"""The fault scenarios' sinks: an SMTP server and an SMS webhook that can fail on purpose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notify_shared.testing.faults import FaultySmtpSink, FaultyWebhookSink


@pytest.fixture
def sinks() -> Iterator[tuple[FaultySmtpSink, FaultyWebhookSink]]:
    smtp, sms = FaultySmtpSink(), FaultyWebhookSink()
    smtp.up()
    try:
        yield smtp, sms
    finally:
        smtp.down()
        sms.close()
