"""``flask scheduler run|status`` and ``flask jobs list|run``."""
from __future__ import annotations

import json
import logging
import signal
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from .models import Outcome, RunSource

scheduler_cli = AppGroup("scheduler", help="The scheduler process (one active, others on standby).")
jobs_cli = AppGroup("jobs", help="Periodic jobs: list them, run one now.")


def _utc(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}Z" if value else "-"


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = current_app.config.get("LOG_LEVEL", "INFO")
    logging.getLogger("oncolink").setLevel(level)
    # APScheduler logs every submission at INFO: a line every few seconds says nothing useful.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@scheduler_cli.command("run")
def scheduler_run_cmd() -> None:
    """Run the scheduler until SIGTERM/SIGINT; waits on standby while another instance is active."""
    from .scheduler import SchedulerService

    _configure_logging()
    try:
        service = SchedulerService(current_app._get_current_object(), source=RunSource.SCHEDULER)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    def on_signal(signum, frame):
        if service.stopping:
            raise SystemExit(1)  # second signal: stop now; the lease simply expires
        click.echo(f"scheduler: {signal.Signals(signum).name} received, stopping", err=True)
        service.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        click.echo(f"scheduler {service.holder}: waiting for the lease", err=True)
        service.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@scheduler_cli.command("status")
def scheduler_status_cmd() -> None:
    """Show which scheduler holds the lease."""
    from . import lease

    state = lease.current()
    if state is None:
        click.echo("no scheduler has ever run")
    elif state.active():
        click.echo(f"active: {state.holder} since {_utc(state.acquired_at)}, "
                   f"lease until {_utc(state.expires_at)}")
    else:
        click.echo(f"no active scheduler (last: {state.holder}, lease ended {_utc(state.expires_at)})")


@jobs_cli.command("list")
def jobs_list_cmd() -> None:
    """List the jobs with their schedule, last run and outcome, and next run."""
    from .queries import job_statuses

    rows = [("job", "schedule", "last run", "outcome", "next run")]
    for status in job_statuses():
        run = status.last_run
        outcome = (run.outcome or "running") if run else "-"
        rows.append((status.spec.name, status.spec.trigger.describe(), _utc(run.started_at) if run else "-",
                     outcome, _utc(status.next_run_at)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


@jobs_cli.command("run")
@click.argument("name")
def jobs_run_cmd(name: str) -> None:
    """Run one job once, now (recorded like a scheduled run); exits 1 if it fails."""
    from .registry import UnknownJob, registry
    from .runner import run_job

    _configure_logging()
    try:
        run = run_job(name, source=RunSource.CLI)
    except UnknownJob:
        raise click.UsageError(f"unknown job {name!r}; known: {', '.join(registry())}") from None
    summary = json.dumps(run.summary or {}, sort_keys=True)
    click.echo(f"{run.job}: {run.outcome} in {run.duration_ms} ms {summary}")
    if run.outcome == Outcome.ERROR:
        click.echo(run.error, err=True)
        raise SystemExit(1)
