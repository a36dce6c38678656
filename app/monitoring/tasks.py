"""The platform watcher as a job of the active scheduler (``watch-platform``): it sees every fault
but the scheduler's own death, which a standby scheduler (``on_standby``) or ``flask health watch``
on another host (cron) reports."""
from __future__ import annotations

from datetime import datetime

from .watch import watch_once


def watch_platform(now: datetime | None = None) -> dict:
    """One look at the health checks; reports and all-clears queued and sent (idempotent)."""
    return watch_once(now)
