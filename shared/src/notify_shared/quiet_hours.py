"""Quiet hours: the local night in which no routine SMS should wake a parent.

One rule for every service: the reminders and the digest hold routine notices through it, the invitations
service the SMS of invitations, updates and cancellations.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict


class QuietHours(BaseModel):
    """Local times between which nothing routine is sent; `start` after `end` means overnight (21:00–07:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(21, 0)
    end: time = time(7, 0)

    def contains(self, local: time) -> bool:
        if self.start > self.end:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def end_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours that `moment` falls in end (aware, UTC), or None when `moment` is not in them.

        Computed on the local wall clock of `zone`, so 07:00 stays 07:00 across a daylight-saving change.
        """
        local = moment.astimezone(zone)
        if not self.contains(local.time()):
            return None
        end_day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)
