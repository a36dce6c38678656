"""Every periodic job: its name, the function it runs (a dotted path, imported only when it runs),
its default schedule and what it does.

A deployment (or a test) may replace the whole table with ``ONCOLINK_JOBS_MODULE``: a module
exposing its own ``JOBS`` mapping.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Interval jobs fire on a grid counted from this instant, not from whenever a scheduler started,
# so every scheduler instance (and a standby taking over) computes the same ticks.
GRID_ORIGIN = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Every:
    """Run every ``seconds``, on the grid counted from ``GRID_ORIGIN``."""

    seconds: int

    def build(self) -> BaseTrigger:
        return IntervalTrigger(seconds=self.seconds, start_date=GRID_ORIGIN, timezone=timezone.utc)

    def describe(self) -> str:
        n = self.seconds
        if n % 86400 == 0:
            return _("every %(n)d d", n=n // 86400)
        if n % 3600 == 0:
            return _("every %(n)d h", n=n // 3600)
        if n % 60 == 0:
            return _("every %(n)d min", n=n // 60)
        return _("every %(n)d s", n=n)

    def default_grace(self) -> int:
        # The coalesced catch-up run is never more than one interval late.
        return self.seconds + 30


@dataclass(frozen=True)
class Cron:
    """Run at wall-clock times in a time zone (for nightly and monthly work)."""

    minute: str = "0"
    hour: str = "*"
    day: str = "*"
    day_of_week: str = "*"
    tz: str = "Europe/Paris"

    def build(self) -> BaseTrigger:
        return CronTrigger(minute=self.minute, hour=self.hour, day=self.day,
                           day_of_week=self.day_of_week, timezone=ZoneInfo(self.tz))

    def describe(self) -> str:
        if self.minute.isdigit() and self.hour.isdigit() and self.day == "*" and self.day_of_week == "*":
            return _("daily at %(time)s (%(tz)s)", time=f"{int(self.hour):02d}:{int(self.minute):02d}",
                     tz=self.tz)
        return f"cron {self.minute} {self.hour} {self.day} * {self.day_of_week} ({self.tz})"

    def default_grace(self) -> int:
        return 6 * 3600


@dataclass(frozen=True)
class JobSpec:
    name: str
    target: str  # "package.module:function", called with no argument inside an app context
    trigger: Every | Cron
    description: object = ""  # a lazy translated string
    misfire_grace_seconds: int | None = None  # None: the trigger's default
    run_at_takeover: bool = False  # run at once when a scheduler takes the lease from another holder
    # Also run by a scheduler that does NOT hold the lease (a standby), at the same interval, so
    # that what the active scheduler cannot see of itself (its death, a wedged executor) is seen.
    # Only for idempotent jobs that are safe beside the active scheduler's own runs; Every only.
    on_standby: bool = False

    @property
    def grace_seconds(self) -> int:
        if self.misfire_grace_seconds is not None:
            return self.misfire_grace_seconds
        return self.trigger.default_grace()

    def resolve(self) -> Callable[[], object]:
        """Import the job function (lazily: its module may belong to a part not installed yet)."""
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)


def _spec(name: str, target: str, trigger: Every | Cron, description, **options) -> tuple[str, JobSpec]:
    return name, JobSpec(name, target, trigger, description, **options)


JOBS: dict[str, JobSpec] = dict([
    _spec("plan-checkins", "app.pathways.checkins.tasks:plan_checkins", Every(15 * 60),
          _l("Plan the next check-in of every followed patient.")),
    _spec("start-checkins", "app.pathways.checkins.tasks:start_due_checkins", Every(60),
          _l("Send the first question of the check-ins that are due.")),
    _spec("dispatch-outbox", "app.notifications.tasks:dispatch_outbox", Every(5),
          _l("Send queued text messages and calls at the provider's rate."),
          run_at_takeover=True),  # recovers at once what the previous scheduler left in flight
    _spec("process-inbound", "app.notifications.tasks:process_inbound", Every(2),
          _l("Read the patients' text messages queued by the webhook, in the order they came.")),
    _spec("chase-non-responders", "app.pathways.checkins.tasks:chase_non_responders", Every(15 * 60),
          _l("Remind patients who have not answered, then ask a nurse to call.")),
    _spec("escalate-alerts", "app.triage.tasks:escalate_alerts", Every(60),
          _l("Page the next person when an alert is not acknowledged in time.")),
    _spec("notify-rota-gaps", "app.triage.tasks:notify_rota_gaps", Every(3600),
          _l("Text the site's admins and nurses about on-call rota gaps of the next 72 hours, once a day.")),
    _spec("watch-platform", "app.monitoring.tasks:watch_platform", Every(30),
          _l("Tell the technical contacts when a health check fails for too long, and when it recovers."),
          on_standby=True),  # a standby watches the active scheduler, which cannot report its own faults
    _spec("recompute-adherence", "app.adherence.tasks:recompute_adherence", Cron(minute="30", hour="2"),
          _l("Recompute every active patient's adherence (PDC, self-report) and raise the findings.")),
    _spec("monthly-statements", "app.reports.tasks:monthly_statements", Cron(minute="0", hour="4", day="1"),
          _l("Build last month's payments ledger for the monthly statements.")),
    _spec("prune-job-runs", "app.jobs.tasks:prune_job_runs", Cron(minute="20", hour="3"),
          _l("Delete old job run records, keeping the last run of each job.")),
    _spec("drain-spool", "app.notifications.spool_drain:drain_job", Every(10),
          _l("Move the webhook requests spooled on this host during a database outage into the database.")),
])


def registry() -> Mapping[str, JobSpec]:
    """The jobs of this deployment: ``JOBS`` above, or the mapping named by ``JOBS_MODULE``
    ("package.module", whose ``JOBS`` is used, or "package.module:NAME")."""
    setting = current_app.config.get("JOBS_MODULE")
    if not setting:
        return JOBS
    module_name, _, attr = setting.partition(":")
    return getattr(importlib.import_module(module_name), attr or "JOBS")


class UnknownJob(KeyError):
    pass


def get_spec(name: str) -> JobSpec:
    try:
        return registry()[name]
    except KeyError:
        raise UnknownJob(name) from None
