"""Jobs of the transport; each is also a CLI command (``flask outbox dispatch``)."""
from __future__ import annotations

from typing import Any

from flask import current_app

from .dispatcher import Dispatcher, DispatchSettings
from .providers import get_provider


def dispatch_outbox(*, batch_size: int | None = None, time_budget_s: float | None = None) -> dict[str, Any]:
    """Send the due outbox rows at the configured rate; commits per claim and per send.

    Safe to run again at any time, and from several processes at once.
    """
    app = current_app._get_current_object()
    provider = get_provider(app)
    try:
        stats = Dispatcher(provider, DispatchSettings.from_config(app.config)).run(
            batch_size=batch_size, time_budget_s=time_budget_s)
    finally:
        provider.close()
    return stats.as_dict()
