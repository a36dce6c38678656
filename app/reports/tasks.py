"""Monthly job: build the previous month's ledger (the statements read it)."""
from __future__ import annotations

from typing import Any

from app.core.db import unit_of_work
from app.core.time import utcnow

from .ledger import build_ledger
from .months import month_key, previous_month


def monthly_statements() -> dict[str, Any]:
    """Build the ledger of the month before today (idempotent: a rerun adds nothing)."""
    with unit_of_work():
        return build_ledger(month_key(previous_month(utcnow().date())))
