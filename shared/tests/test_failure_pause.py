"""Pausing before an event is handled again: a real failure is logged with its traceback, a claim held by
another sender (normal after a crash, until its heartbeat or lease runs out) once per event as a WARNING."""

from __future__ import annotations

import logging

import pytest

from notify_shared.delivery import NotificationInFlightError
from notify_shared.kafka.failure_pause import PauseOnFailure


async def no_sleep(_: float) -> None:
    return None


async def waiting_for_a_claim() -> None:
    raise NotificationInFlightError("3f9a0c1d2e4b5a6978c0d1e2f3")


async def test_waiting_for_another_senders_claim_is_logged_once_per_event_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pause = PauseOnFailure(sleep=no_sleep)

    with caplog.at_level(logging.DEBUG, logger="notify_shared.kafka.failure_pause"):
        for _ in range(12):
            with pytest.raises(NotificationInFlightError):
                await pause.run(waiting_for_a_claim, event_id="evt-1")
        with pytest.raises(NotificationInFlightError):
            await pause.run(waiting_for_a_claim, event_id="evt-2")

    assert [(record.levelno, record.exc_info) for record in caplog.records] == [
        (logging.WARNING, None),
        (logging.WARNING, None),
    ]
    assert "evt-1" in caplog.records[0].getMessage()
    assert "3f9a0c1d2e4b5a6978c0d1e2f3" in caplog.records[0].getMessage()


async def test_an_event_that_waited_and_then_succeeded_is_warned_about_again_if_it_waits_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pause = PauseOnFailure(sleep=no_sleep)

    async def succeed() -> None:
        return None

    with caplog.at_level(logging.WARNING, logger="notify_shared.kafka.failure_pause"):
        with pytest.raises(NotificationInFlightError):
            await pause.run(waiting_for_a_claim, event_id="evt-1")
        await pause.run(succeed, event_id="evt-1")
        with pytest.raises(NotificationInFlightError):
            await pause.run(waiting_for_a_claim, event_id="evt-1")

    assert len(caplog.records) == 2


async def test_any_other_failure_is_logged_as_an_error_with_its_traceback_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pause = PauseOnFailure(sleep=no_sleep)

    async def database_down() -> None:
        raise ConnectionRefusedError("database away")

    with caplog.at_level(logging.WARNING, logger="notify_shared.kafka.failure_pause"):
        for _ in range(3):
            with pytest.raises(ConnectionRefusedError):
                await pause.run(database_down, event_id="evt-1")

    assert [record.levelno for record in caplog.records] == [logging.ERROR] * 3
    assert all(record.exc_info is not None for record in caplog.records)
