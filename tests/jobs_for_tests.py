"""Test-only jobs, swapped in for the real registry with JOBS_MODULE / ONCOLINK_JOBS_MODULE."""
from __future__ import annotations

import os
import time

from app.extensions import db
from app.jobs.registry import Every, JobSpec

# What a careless exception message could carry; it must never reach a record or a log.
HEALTH_DATA = "DURAND Marie +33612345678 diarrhoea grade 3"

TICK_SECONDS = 2
TICK_WORK_SECONDS = 0.3


def succeed() -> dict:
    return {"rows": 3, "state": "fine"}


def fail() -> dict:
    raise ValueError(f"could not process {HEALTH_DATA}")


def write_then_fail() -> dict:
    """Leaves an uncommitted change behind, then fails: the change must be rolled back."""
    from app.core.time import utcnow
    from app.jobs.models import SchedulerLease

    now = utcnow()
    db.session.add(SchedulerLease(name="written-by-a-failing-job", holder="x", acquired_at=now,
                                  renewed_at=now, expires_at=now))
    db.session.flush()
    raise RuntimeError(HEALTH_DATA)


def tick() -> dict:
    """Appends 'start' and 'end' lines (pid, tick key, time) to ONCOLINK_TEST_TICKS_FILE.

    The tick key is the scheduled slot: the job fires on a grid of TICK_SECONDS counted from an
    integer epoch second, and starts well within its slot.
    """
    path = os.environ["ONCOLINK_TEST_TICKS_FILE"]
    started = time.time()
    key = int(started // TICK_SECONDS)
    _append(path, f"start {os.getpid()} {key} {started:.6f}")
    time.sleep(TICK_WORK_SECONDS)
    _append(path, f"end {os.getpid()} {key} {time.time():.6f}")
    return {"tick": key}


def _append(path: str, line: str) -> None:
    # One write of a short line with O_APPEND: lines of two processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _spec(name: str, func: str, seconds: int) -> tuple[str, JobSpec]:
    return name, JobSpec(name, f"tests.jobs_for_tests:{func}", Every(seconds), f"test job {name}")


WEEKLY = 7 * 86400  # fires on Mondays at 00:00 UTC only: in effect, only when run by hand

# ``tick`` drives the scheduler-process tests; the others are run by hand.
JOBS = dict([
    _spec("succeed", "succeed", WEEKLY),
    _spec("fail", "fail", WEEKLY),
    _spec("write-then-fail", "write_then_fail", WEEKLY),
    _spec("tick", "tick", TICK_SECONDS),
    ("not-installed", JobSpec("not-installed", "app.not_built_yet.tasks:run", Every(WEEKLY))),
    ("broken-target", JobSpec("broken-target", "tests.jobs_for_tests:no_such_function", Every(WEEKLY))),
])

# For an in-process scheduler: both fire every second.
FAST_JOBS = dict([
    _spec("succeed-often", "succeed", 1),
    _spec("fail-often", "fail", 1),
    _spec("succeed-weekly", "succeed", WEEKLY),  # runs only when brought forward (run_soon)
])

# The inbound loop alone: process-inbound every second; dispatch-outbox only when brought forward.
INBOUND_JOBS = dict([
    ("process-inbound", JobSpec("process-inbound", "app.notifications.tasks:process_inbound", Every(1))),
    ("dispatch-outbox", JobSpec("dispatch-outbox", "app.notifications.tasks:dispatch_outbox", Every(WEEKLY))),
])


# The dispatcher alone, every 2 s, run at once by a scheduler that takes the lease over.
DISPATCH_JOBS = dict([
    ("dispatch-outbox", JobSpec("dispatch-outbox", "app.notifications.tasks:dispatch_outbox", Every(2),
                                run_at_takeover=True)),
])


def clear_scheduler_state() -> None:
    """Forget the job store APScheduler keeps beside our tables (emptied by no other fixture)."""
    from sqlalchemy import inspect, text

    from app.jobs.scheduler import JOBSTORE_TABLE

    with db.engine.begin() as conn:
        if inspect(conn).has_table(JOBSTORE_TABLE):
            conn.execute(text(f"DELETE FROM {JOBSTORE_TABLE}"))

# A scheduler that holds the lease and runs nothing of note (the platform watcher's tests).
QUIET_JOBS = dict([
    _spec("succeed-weekly", "succeed", WEEKLY),
])

# A standby's duties: "watch-often" is also run by a scheduler that does not hold the lease.
STANDBY_JOBS = dict([
    _spec("succeed-often", "succeed", 1),
    ("watch-often", JobSpec("watch-often", "tests.jobs_for_tests:succeed", Every(1), "test watcher",
                            on_standby=True)),
])
