"""``flask health check`` and ``flask health watch`` (for cron, on another host than the scheduler)."""
from __future__ import annotations

import json
import time

import click
from flask.cli import AppGroup

health_cli = AppGroup("health", help="The platform's own health: checks, faults, reports.")


@health_cli.command("check")
def check_cmd() -> None:
    """Print the health checks (as GET /healthz); exits 1 when one fails."""
    from app.web.health import platform_health

    report = platform_health()
    click.echo(json.dumps(report, sort_keys=True, default=str))
    if not report["ok"]:
        raise SystemExit(1)


@health_cli.command("watch")
@click.option("--every", type=float, default=0.0,
              help="Seconds between two looks, forever (0: look once, for cron).")
def watch_cmd(every: float) -> None:
    """Tell the technical contacts about faults that last, and about recoveries; once per incident."""
    from app.extensions import db

    from .watch import watch_once

    while True:
        try:
            result = watch_once()
        except Exception as exc:  # noqa: BLE001 - the database is down or failing: say so, go on looping
            db.session.rollback()
            result = {"error": type(exc).__name__}
        click.echo(json.dumps(result, sort_keys=True))
        if not every:
            if result.get("error") or result.get("recorded") is False:
                raise SystemExit(1)
            return
        time.sleep(every)
