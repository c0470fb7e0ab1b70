"""The loop that announces closed booking windows (`TalksService.close_due_rounds`), in every replica.

Replicas may run it at the same time: a round is closed in the transaction that queues its event, and on
PostgreSQL a round another replica is closing is skipped, so each round gets one `talks.round_closed`.
"""

from __future__ import annotations

from collections.abc import Callable

from notify_responses.repeating import RepeatingTask
from notify_responses.talks_service import TalksService

CHECK_INTERVAL_SECONDS = 30.0
"""How often the loop looks for windows that have closed: a round is announced at most this late."""


class RoundCloser:
    def __init__(
        self, service: Callable[[], TalksService], *, interval_seconds: float = CHECK_INTERVAL_SECONDS
    ) -> None:
        self._loop = RepeatingTask(
            lambda: service().close_due_rounds(),
            interval_seconds=interval_seconds,
            name="responses-talk-round-closer",
            what="closing booking rounds",
        )
        self.start = self._loop.start
        self.stop = self._loop.stop
