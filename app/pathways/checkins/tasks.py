"""The check-in jobs: plain functions, safe to rerun; each commits its own batches and returns a summary.

Registered by dotted path with the scheduler (``app.jobs``) and runnable once with
``flask jobs run <name>``.
"""
from __future__ import annotations

from datetime import datetime

from .chase import chase_non_responders as _chase
from .planning import plan_checkins as _plan
from .start import start_due_checkins as _start


def plan_checkins(now: datetime | None = None) -> dict:
    """Create the check-ins of the current period (and the next one when it is near)."""
    return _plan(now)


def start_due_checkins(now: datetime | None = None) -> dict:
    """Send the first question, or place the call, of every check-in whose time has come."""
    return _start(now)


def chase_non_responders(now: datetime | None = None) -> dict:
    """Reminders, nurse call tasks, closing ended periods, alert after two missed periods."""
    return _chase(now)
