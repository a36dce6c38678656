"""Jobs of the triage domain (registered in ``app.jobs.registry``)."""
from __future__ import annotations

from datetime import datetime

from app.core.db import unit_of_work

from .escalation import escalate_due


def escalate_alerts(now: datetime | None = None) -> dict:
    """Page the next person for every red alert not acknowledged in time; commits once.

    Safe to run again at any time, and from two processes at once (see ``escalation``).
    """
    with unit_of_work():
        return escalate_due(now)
