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


def notify_rota_gaps(now: datetime | None = None) -> dict:
    """Text the site's admins and coordinating nurses about the rota gaps of the next 72 hours,
    once a day per person until the gap is filled; commits once (``oncall_notices``)."""
    from .oncall_notices import notify_gaps

    with unit_of_work():
        return notify_gaps(now)
