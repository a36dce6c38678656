"""Jobs of the transport; each is also a CLI command (``flask outbox dispatch``)."""
from __future__ import annotations

from typing import Any

from flask import current_app

from .dispatcher import Dispatcher, DispatchSettings
from .providers import get_provider


def dispatch_outbox(*, batch_size: int | None = None, time_budget_s: float | None = None,
                    urgent_only: bool = False) -> dict[str, Any]:
    """Send the due outbox rows at the configured rate; commits per claim and per send.

    Safe to run again at any time, and from several processes at once. ``urgent_only``: the
    urgent lane alone (the platform watcher sends its reports, and any page waiting, itself).
    """
    app = current_app._get_current_object()
    provider = get_provider(app)
    try:
        stats = Dispatcher(provider, DispatchSettings.from_config(app.config)).run(
            batch_size=batch_size, time_budget_s=time_budget_s, urgent_only=urgent_only)
    finally:
        provider.close()
    return stats.as_dict()


def process_inbound(*, batch_size: int = 50, time_budget_s: float | None = None) -> dict[str, Any]:
    """Read the queued inbound SMS (answers, keywords, acknowledgements) in arrival order.

    Idempotent: a message is read once; a run cut short leaves the rest for the next. When
    it wrote anything to the outbox (replies, pages) and this process runs the scheduler, the
    dispatcher is asked to run now rather than at its next tick (a page should not wait 5 s).
    """
    from app.jobs.scheduler import run_soon

    from .inbound import process_queued
    from .outbox import counting_writes

    budget = current_app.config["INBOUND_TIME_BUDGET_SECONDS"] if time_budget_s is None else time_budget_s
    with counting_writes() as written:
        stats = process_queued(batch_size=batch_size, time_budget_s=budget)
        stats["outbox_rows"] = written()
    if stats["outbox_rows"]:  # replies, and pages to the on-call team (a red text answered in the webhook)
        run_soon("dispatch-outbox")
    return stats
