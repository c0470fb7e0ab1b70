"""Events dated too far ahead are refused on the way in, with a dead-letter reason an operator can act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notify_shared import samples
from notify_shared.contract import EventRejected, encode_structured
from notify_shared.kafka import EventTimeLimit, decode_for_topic

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LIMIT = EventTimeLimit(timedelta(hours=24), lambda: NOW)


def _decode(time: datetime) -> None:
    value, headers = encode_structured(samples.meeting_updated(time=time))
    decode_for_topic(value, headers, "meeting.updated", LIMIT)


def test_an_event_dated_far_ahead_is_rejected_as_time_in_future_naming_its_time_and_the_latest_accepted() -> None:
    with pytest.raises(EventRejected) as rejected:
        _decode(datetime(2199, 1, 1, tzinfo=UTC))

    assert rejected.value.reason == "time_in_future"
    assert rejected.value.errors == (
        "time: 2199-01-01T00:00:00+00:00 lies more than 24 hours after the receiver's clock "
        "(2026-11-20T08:00:00+00:00); the latest accepted is 2026-11-21T08:00:00+00:00",
    )


@pytest.mark.parametrize(
    "time",
    [NOW - timedelta(days=30), NOW, NOW + timedelta(hours=24)],
    ids=["in-the-past", "now", "at-the-margin"],
)
def test_events_up_to_the_margin_ahead_are_accepted(time: datetime) -> None:
    _decode(time)


def test_a_time_with_another_offset_is_compared_as_the_same_instant() -> None:
    # 09:30 in Oslo on the 21st is 08:30 UTC: half an hour past the margin.
    with pytest.raises(EventRejected, match="time_in_future"):
        _decode(datetime(2026, 11, 21, 9, 30, tzinfo=samples.OSLO))


def test_without_a_limit_of_its_own_the_decoder_allows_a_day_on_the_wall_clock() -> None:
    value, headers = encode_structured(samples.meeting_updated(time=datetime.now(UTC) + timedelta(days=2)))

    with pytest.raises(EventRejected, match="time_in_future"):
        decode_for_topic(value, headers, "meeting.updated")
