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


spool_cli = AppGroup("spool", help="This host's webhook spool (texts and callbacks kept while the database was down).")


@spool_cli.command("status")
def spool_status_cmd() -> None:
    """Items waiting in this host's spool, the oldest's age, and items set aside."""
    from . import spool

    state = spool.details()
    click.echo(f"spool {state.path}")
    click.echo(f"waiting   {state.pending}")
    click.echo(f"set aside {state.failed}")
    if state.oldest is not None:
        click.echo(f"oldest item waiting for {int((utcnow() - state.oldest).total_seconds())} s")


@spool_cli.command("drain")
@click.option("--wait", type=float, default=30.0, show_default=True,
              help="Seconds to wait for another process that is draining this spool.")
@click.option("--retry-set-aside", is_flag=True, help="First put the items set aside back in line.")
def spool_drain_cmd(wait: float, retry_set_aside: bool) -> None:
    """Move the spooled items into the database now (as the web workers and the scheduler do)."""
    from . import spool, spool_drain

    if retry_set_aside:
        click.echo(f"put back in line: {spool.retry_failed()}")
    stats = spool_drain.drain(wait_s=wait)
    click.echo(" ".join(f"{key}={value}" for key, value in stats.items()))
    if stats["left"]:
        raise click.ClickException(f"{stats['left']} items still wait (database down, or being drained)")
