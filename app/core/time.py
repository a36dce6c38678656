"""UTC time with a clock that tests and jobs can fix."""
from __future__ import annotations

from datetime import datetime, timezone

_frozen: datetime | None = None


def utcnow() -> datetime:
    """Timezone-aware current UTC time (or the fixed test clock)."""
    return _frozen if _frozen is not None else datetime.now(timezone.utc)


def set_clock(when: datetime | None) -> None:
    """Fix the clock (tests, replaying jobs); ``None`` returns to real time."""
    global _frozen
    if when is not None and when.tzinfo is None:
        raise ValueError("the clock must be timezone-aware")
    _frozen = when
