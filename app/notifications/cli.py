"""``flask outbox dispatch`` and ``flask outbox status``."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.core.time import utcnow
from app.extensions import db

outbox_cli = AppGroup("outbox", help="The SMS and call outbox.")


@outbox_cli.command("dispatch")
@click.option("--batch-size", type=int, default=None, help="Rows claimed at a time.")
@click.option("--time-budget", type=float, default=None,
              help="Seconds before stopping (default OUTBOX_TIME_BUDGET_SECONDS; 0: until nothing is due).")
def dispatch_cmd(batch_size: int | None, time_budget: float | None) -> None:
    """Send the due messages once, as the scheduler's job does."""
    from .tasks import dispatch_outbox

    stats = dispatch_outbox(batch_size=batch_size, time_budget_s=time_budget)
    click.echo(" ".join(f"{key}={value}" for key, value in stats.items()))


@outbox_cli.command("status")
def status_cmd() -> None:
    """Rows per state and the age of the oldest due row."""
    from .outbox import oldest_due, state_counts

    counts = state_counts()
    oldest = oldest_due()
    db.session.rollback()
    for state, count in counts.items():
        click.echo(f"{state:<8} {count}")
    if oldest is not None:
        click.echo(f"oldest due row waiting for {int((utcnow() - oldest).total_seconds())} s")
    from .inbound import oldest_queued, queued_count

    unread, first = queued_count(), oldest_queued()
    db.session.rollback()
    click.echo(f"inbound SMS not yet read: {unread}")
    if first is not None:
        click.echo(f"oldest unread inbound SMS waiting for {int((utcnow() - first).total_seconds())} s")
