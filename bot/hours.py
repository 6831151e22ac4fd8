"""When counsellors are on duty (pure, no I/O). Empty = always (the embedded default)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DutyHours:
    """Daily duty window such as "08:00-20:00" in a time zone; may wrap past midnight."""

    spec: str = ""
    timezone: str = "UTC"

    def _window(self) -> tuple[dt.time, dt.time] | None:
        if not self.spec.strip():
            return None
        start, _, end = self.spec.partition("-")
        return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())

    def validate(self) -> None:
        """Raises ValueError on a malformed window or time zone (checked at start-up)."""
        self._window()
        ZoneInfo(self.timezone)

    def on_duty(self, at: float) -> bool:
        window = self._window()
        if window is None:
            return True
        now = dt.datetime.fromtimestamp(at, ZoneInfo(self.timezone)).time()
        start, end = window
        return start <= now < end if start <= end else (now >= start or now < end)

    def describe(self) -> str:
        return f"{self.spec.strip()} ({self.timezone})" if self.spec.strip() else "24/7"
