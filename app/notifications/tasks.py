"""Jobs of the transport; each is also a CLI command (``flask outbox dispatch``)."""
from __future__ import annotations

import time
from typing import Any

from flask import current_app

from .dispatcher import Dispatcher, DispatchSettings
from .providers import get_provider

# A scheduler being stopped (or nearing the end of its lease) waits for the runs in progress:
# the inbound reader checks between slices of this length, so that wait stays short.
INBOUND_SLICE_SECONDS = 1.0


def dispatch_outbox(*, batch_size: int | None = None, time_budget_s: float | None = None,
                    urgent_only: bool = False) -> dict[str, Any]:
    """Send the due outbox rows at the configured rate; commits per claim and per send.

    Safe to run again at any time, and from several processes at once. Run by the scheduler
    holding the lease, rows are claimed under its holder id, sending stops as soon as the
    scheduler stops or nears the end of its lease, and the first run after a takeover recovers
    at once what the previous holder left in flight. Run from the CLI, it claims under its own id.
    ``urgent_only``: the urgent lane alone (the platform watcher sends its reports, and any page
    waiting, itself).
    """
    from app.jobs.scheduler import current_service

    app = current_app._get_current_object()
    service = current_service()
    provider = get_provider(app)
    recover_from = service.pending_takeovers() if service is not None else []
    try:
        dispatcher = Dispatcher(provider, DispatchSettings.from_config(app.config),
                                claimer=service.holder if service is not None else None,
                                keep_going=service.may_continue if service is not None else None)
        stats = dispatcher.run(batch_size=batch_size, time_budget_s=time_budget_s, urgent_only=urgent_only,
                               recover_from=recover_from)
    finally:
        provider.close()
    if service is not None and recover_from:
        service.takeovers_recovered(recover_from)
    return stats.as_dict()


def process_inbound(*, batch_size: int = 50, time_budget_s: float | None = None) -> dict[str, Any]:
    """Read the queued inbound SMS (answers, keywords, acknowledgements) in arrival order.

    Idempotent: a message is read once; a run cut short leaves the rest for the next. When
    it wrote anything to the outbox (replies, pages) and this process runs the scheduler, the
    dispatcher is asked to run now rather than at its next tick (a page should not wait 5 s).
    Under the scheduler the queue is read in slices of about a second, so a scheduler asked to
    stop is not held up by a long backlog.
    """
    from app.jobs.scheduler import current_service, run_soon

    from .inbound import process_queued
    from .outbox import counting_writes

    budget = current_app.config["INBOUND_TIME_BUDGET_SECONDS"] if time_budget_s is None else time_budget_s
    service = current_service()
    with counting_writes() as written:
        if service is None:
            stats = process_queued(batch_size=batch_size, time_budget_s=budget)
        else:
            stats = _in_slices(process_queued, service.may_continue, batch_size, budget)
        stats["outbox_rows"] = written()
    if stats["outbox_rows"]:  # replies, and pages to the on-call team (a red text answered in the webhook)
        run_soon("dispatch-outbox")
    return stats


def _in_slices(process_queued, may_continue, batch_size: int, budget: float) -> dict[str, Any]:
    deadline = time.monotonic() + budget if budget else None
    total: dict[str, Any] = {}
    while True:
        remaining = INBOUND_SLICE_SECONDS if deadline is None else deadline - time.monotonic()
        part = process_queued(batch_size=batch_size,
                              time_budget_s=max(0.001, min(INBOUND_SLICE_SECONDS, remaining)))
        for key, value in part.items():
            total[key] = value if key == "left" else total.get(key, 0) + value
        if "left" not in part:  # the queue is empty
            return total
        if (deadline is not None and time.monotonic() >= deadline) or not may_continue():
            return total
        total.pop("left")
