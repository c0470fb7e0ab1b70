"""The two retention windows, kept free of SQLAlchemy so settings can name them (see `rules`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Window(StrEnum):
    PERSONAL_DATA = "personal_data"
    RECORDS = "records"


@dataclass(frozen=True)
class RetentionWindows:
    """How long each kind of data is kept once nothing needs it any more."""

    personal_data: timedelta = timedelta(days=30)
    records: timedelta = timedelta(days=400)

    def __post_init__(self) -> None:
        if self.personal_data <= timedelta(0) or self.records <= timedelta(0):
            raise ValueError("retention windows must be positive")

    def of(self, window: Window) -> timedelta:
        return self.personal_data if window is Window.PERSONAL_DATA else self.records
