"""The scheduler: never started by create_app; jobs registered in APScheduler's persistent store;
runs only while holding the lease; a standby takes over from a dead or stalled holder; two real
``flask scheduler run`` processes never run a job at the same time or twice for one tick."""
from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select, update

from app.core.time import utcnow
from app.jobs import lease
from app.jobs import scheduler as scheduler_module
from app.jobs.models import JobRun, SchedulerLease
from app.jobs.scheduler import THREAD_NAME, register_jobs, start_in_background
from tests.conftest import DATABASE_URL, make_app
from tests.jobs_for_tests import TICK_SECONDS, TICK_WORK_SECONDS, clear_scheduler_state

ROOT = Path(__file__).resolve().parent.parent
LEASE_SECONDS = 2.0
RETRY_SECONDS = 0.5  # renew deadline: two thirds of the lease


def wait_for(predicate, timeout: float, step: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _scheduler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("APScheduler", THREAD_NAME)]


def _running_schedulers() -> list[BaseScheduler]:
    gc.collect()
    return [obj for obj in gc.get_objects() if isinstance(obj, BaseScheduler) and obj.running]


def test_create_app_and_requests_start_no_scheduler(app):
    assert _scheduler_threads() == [] and _running_schedulers() == []
    fresh = make_app()
    with fresh.app_context():
        response = fresh.test_client().get("/login")
        assert response.status_code == 200
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    assert _scheduler_threads() == []
    assert _running_schedulers() == []
    assert scheduler_module._service is None


@pytest.fixture()
def fast(app, db, monkeypatch):
    """An in-process scheduler setup: short lease, the test registry; every service stopped after."""
    monkeypatch.setitem(app.config, "SCHEDULER_LEASE_SECONDS", LEASE_SECONDS)
    monkeypatch.setitem(app.config, "SCHEDULER_RETRY_SECONDS", RETRY_SECONDS / 2)
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests:FAST_JOBS")
    clear_scheduler_state()
    services = []

    def start():
        service = start_in_background(app)
        services.append(service)
        return service

    yield start
    for service in services:
        service.shutdown(timeout=15)
    assert _scheduler_threads() == []


def _runs(db, **where):
    db.session.rollback()
    query = select(JobRun).order_by(JobRun.id)
    for key, value in where.items():
        query = query.where(getattr(JobRun, key) == value)
    return db.session.scalars(query).all()


def test_background_scheduler_runs_jobs_records_failures_and_releases_the_lease(fast, db):
    service = fast()
    wait_for(lambda: service.active, 5, what="the lease")
    assert lease.current().holder == service.holder
    wait_for(lambda: len(_runs(db, job="fail-often", outcome="error")) >= 2
             and len(_runs(db, job="succeed-often", outcome="ok")) >= 2, 15, what="runs")
    assert service.active  # failures did not stop it
    for run in _runs(db, source="demo"):
        assert run.pid == os.getpid()
    failed = _runs(db, job="fail-often")[0]
    assert failed.error.startswith("ValueError") and "DURAND" not in failed.error
    assert _scheduler_threads() != []

    service.shutdown(timeout=15)
    assert not service.active
    assert _scheduler_threads() == []
    state = lease.current()
    assert state.holder == service.holder and not state.active()
    assert all(run.finished_at is not None for run in _runs(db))  # runs in progress were awaited


def test_run_soon_brings_a_job_forward_only_in_the_scheduler_process(fast, db):
    assert scheduler_module.run_soon("succeed-weekly") is False  # no scheduler here: the tick will do
    service = fast()
    wait_for(lambda: service.active, 5, what="the lease")
    assert _runs(db, job="succeed-weekly") == []
    wait_for(lambda: scheduler_module.run_soon("succeed-weekly"), 5, what="the job registered")
    wait_for(lambda: len(_runs(db, job="succeed-weekly", outcome="ok")) == 1, 10, what="the early run")
    assert scheduler_module.run_soon("no-such-job") is False


def test_standby_waits_then_takes_over_from_a_dead_holder_and_closes_its_runs(fast, db):
    dead = "deadhost:4242:abcdef"
    lease.acquire(dead, 3)
    db.session.add(JobRun(job="succeed-often", source="scheduler", started_at=utcnow(), host="deadhost", pid=4242))
    db.session.commit()

    service = fast()
    time.sleep(1.2)
    assert not service.active
    assert _runs(db, source="demo") == []

    wait_for(lambda: service.active, 3 + 3, what="the takeover")
    assert lease.current().holder == service.holder
    [orphan] = _runs(db, host="deadhost")
    assert orphan.outcome == "error" and orphan.error.startswith("interrupted")
    wait_for(lambda: _runs(db, job="succeed-often", source="demo"), 5, what="a run")


def test_holder_stops_scheduling_as_soon_as_its_lease_is_taken(fast, app, db):
    service = fast()
    wait_for(lambda: service.active and _runs(db, source="demo"), 8, what="first runs")
    with app.app_context():
        from app.extensions import db as _db

        with _db.engine.begin() as conn:
            conn.execute(update(SchedulerLease).where(SchedulerLease.name == lease.SCHEDULER_LEASE)
                         .values(holder="thief:1:xyz", expires_at=datetime.now(timezone.utc) + timedelta(minutes=5)))
    stolen_at = utcnow()
    wait_for(lambda: not service.active, RETRY_SECONDS + 1, what="the scheduler to stop")
    time.sleep(2.5)  # two more ticks of each job would have run by now
    late = [r for r in _runs(db, source="demo") if r.started_at > stolen_at + timedelta(seconds=0.3)]
    assert late == []
    service.shutdown(timeout=15)
    assert lease.current().holder == "thief:1:xyz"  # shutting down never releases someone else's lease


def test_demo_style_shutdown_without_waiting_still_releases_the_lease(fast, db):
    service = fast()
    wait_for(lambda: service.active, 5, what="the lease")
    service.shutdown(wait=False)  # what the demo command does when the web server stops
    wait_for(lambda: _scheduler_threads() == [], 10, what="the scheduler thread to end")
    state = lease.current()
    assert state.holder == service.holder and not state.active()


def test_only_one_scheduler_service_per_process(fast, app):
    first = fast()
    with pytest.raises(RuntimeError, match="already runs"):
        fast()
    first.shutdown(timeout=15)


def test_register_jobs_sets_options_keeps_schedule_and_drops_stale_jobs(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests")
    clear_scheduler_state()
    from tests.jobs_for_tests import JOBS

    store = SQLAlchemyJobStore(url=db.engine.url.render_as_string(hide_password=False))
    sched = BackgroundScheduler(jobstores={"default": store}, timezone=timezone.utc)
    sched.start(paused=True)
    try:
        register_jobs(sched)
        jobs = {job.id: job for job in sched.get_jobs()}
        assert set(jobs) == set(JOBS)
        tick = jobs["tick"]
        assert tick.func_ref == "app.jobs.scheduler:execute" and tick.args == ("tick",)
        assert tick.coalesce is True and tick.max_instances == 1
        assert tick.misfire_grace_time == TICK_SECONDS + 30
        # On the shared grid: every instance computes the same ticks.
        assert tick.next_run_time.timestamp() % TICK_SECONDS == 0

        # A new holder starts 0.4 s after a grid tick that the last holder missed.
        grid = tick.next_run_time + timedelta(seconds=10 * TICK_SECONDS)
        missed = grid - timedelta(seconds=TICK_SECONDS)
        now = missed + timedelta(seconds=0.4)
        sched.modify_job("tick", next_run_time=missed)
        sched.modify_job("succeed", next_run_time=now - timedelta(days=30))  # beyond its grace
        sched.add_job(scheduler_module.execute, "interval", seconds=5, id="retired", args=["retired"])
        register_jobs(sched, now=now)
        jobs = {job.id: job for job in sched.get_jobs()}
        assert "retired" not in jobs
        assert jobs["tick"].next_run_time == missed  # still runs once when the new holder starts
        assert jobs["succeed"].next_run_time > now

        # Not when that would run it twice within half its interval: the next tick is less than
        # half an interval (and a margin) away, or its last run started less than half
        # an interval ago (a run cut short by a crash is then redone at the next tick).
        sched.modify_job("tick", next_run_time=missed)
        register_jobs(sched, now=grid - timedelta(seconds=0.5))
        assert sched.get_job("tick").next_run_time == grid
        db.session.add(JobRun(job="tick", source="scheduler", started_at=now - timedelta(seconds=0.3),
                              host="deadhost", pid=4242))
        db.session.commit()
        sched.modify_job("tick", next_run_time=missed)
        register_jobs(sched, now=now)
        assert sched.get_job("tick").next_run_time == grid
    finally:
        sched.shutdown(wait=False)


# -- two real scheduler processes ------------------------------------------------------------

def _spawn(env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _lines(path: Path) -> list[tuple[str, int, int, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        kind, pid, key, when = line.split()
        rows.append((kind, int(pid), int(key), float(when)))
    return rows


def _starts(path: Path, pid: int | None = None, after: float = 0.0) -> list[tuple[str, int, int, float]]:
    return [r for r in _lines(path) if r[0] == "start" and (pid is None or r[1] == pid) and r[3] > after]


def _freeze_outside_a_write(pid: int) -> None:
    """SIGSTOP the process at a moment it holds no SQLite write lock.

    On SQLite a writer frozen mid-transaction stalls every writer of the database (scheduler or
    web) until it resumes: a limit of SQLite, not what this test is about. On PostgreSQL the lease
    transactions cut off a frozen holder, so any moment will do.
    """
    if not DATABASE_URL.startswith("sqlite:///"):
        os.kill(pid, signal.SIGSTOP)
        return
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        probe = sqlite3.connect(DATABASE_URL.removeprefix("sqlite:///"), timeout=0.1, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.02)
        finally:
            probe.close()
    raise AssertionError("the process always held the database lock")


def test_two_scheduler_processes_never_run_a_job_together_or_twice(app, db, tmp_path):
    clear_scheduler_state()
    ticks = tmp_path / "ticks.log"
    env = {**os.environ, "ONCOLINK_ENV": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "ONCOLINK_JOBS_MODULE": "tests.jobs_for_tests", "ONCOLINK_TEST_TICKS_FILE": str(ticks),
           "ONCOLINK_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
           "ONCOLINK_SCHEDULER_RETRY_SECONDS": str(RETRY_SECONDS), "PYTHONUNBUFFERED": "1"}
    takeover_limit = LEASE_SECONDS + RETRY_SECONDS + TICK_SECONDS + 3
    procs = {}
    logs = {}
    try:
        for label in ("one", "two"):
            proc = _spawn(env, tmp_path / f"{label}.log")
            procs[proc.pid] = proc
            logs[proc.pid] = tmp_path / f"{label}.log"

        # 1. Both run; exactly one executes the job.
        wait_for(lambda: len(_starts(ticks)) >= 2, 45, what="the first ticks")
        first = {r[1] for r in _lines(ticks)}
        assert len(first) == 1, "both processes executed jobs"
        active = first.pop()
        [standby] = set(procs) - {active}
        assert procs[standby].poll() is None
        assert lease.parse_holder(lease.current().holder)[1] == active

        # 2. The active one stalls (between two runs) past its lease: the standby takes over,
        # and the stalled one, woken up, must not run anything.
        seen = len(_lines(ticks))
        wait_for(lambda: len(_lines(ticks)) > seen and _lines(ticks)[-1][0] == "end", 2 * TICK_SECONDS + 2,
                 step=0.01, what="the end of a run")
        time.sleep(0.2)  # its run record is closed
        _freeze_outside_a_write(active)
        stalled_at = time.time()
        took_over = wait_for(lambda: _starts(ticks, standby), takeover_limit, what="the standby to take over")
        assert took_over[0][3] - stalled_at < takeover_limit
        os.kill(active, signal.SIGCONT)
        wait_for(lambda: len(_starts(ticks, standby)) >= 2, 2 * TICK_SECONDS + 2, what="runs of the new holder")
        assert procs[active].poll() is None

        # 3. kill -9 the new holder, if possible in the middle of a run: the first one takes over.
        seen = len(_starts(ticks, standby))
        wait_for(lambda: len(_starts(ticks, standby)) > seen, 2 * TICK_SECONDS + 2, step=0.005,
                 what="a run to start")
        procs[standby].send_signal(signal.SIGKILL)
        killed_at = time.time()
        procs[standby].wait(10)
        back = wait_for(lambda: _starts(ticks, active, after=killed_at), takeover_limit,
                        what="the first process to take over again")
        assert back[0][3] - killed_at < takeover_limit
        wait_for(lambda: len(_starts(ticks, active, after=killed_at)) >= 2, 2 * TICK_SECONDS + 2,
                 what="runs after the second takeover")

        # 4. SIGTERM: the holder finishes its run, releases the lease and exits cleanly.
        procs[active].send_signal(signal.SIGTERM)
        assert procs[active].wait(20) == 0
        state = lease.current()
        assert lease.parse_holder(state.holder)[1] == active and not state.active()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)
        for pid, path in logs.items():
            print(f"--- scheduler process {pid} ---\n{path.read_text(errors='replace')}")
        print("--- ticks ---\n" + (ticks.read_text() if ticks.exists() else ""))

    lines = _lines(ticks)
    starts = [r for r in lines if r[0] == "start"]
    ends = {(r[1], r[2]): r[3] for r in lines if r[0] == "end"}

    # Nothing ran twice for one tick. The one exception is a run cut short by the kill -9 (it has
    # no "end"): the new holder may find that tick still due and run it once more. Interrupted
    # work is redone (every job is idempotent), completed work never is.
    for key, n in Counter(r[2] for r in starts).items():
        if n == 1:
            continue
        first, *again = sorted((r for r in starts if r[2] == key), key=lambda r: r[3])
        assert (first[1], key) not in ends, f"tick {key} ran again after it completed"
        assert first[1] == standby and first[3] <= killed_at, f"tick {key} ran twice, not after the kill"
        assert [r[1] for r in again] == [active] and again[0][3] > killed_at

    # Each process ran only while it held the lease.
    assert all(r[1] == active for r in starts if r[3] < stalled_at)
    assert all(r[1] == standby for r in starts if stalled_at < r[3] < killed_at)
    assert all(r[1] == active for r in starts if r[3] > killed_at)

    # Never two runs at once: each run starts after the previous one ended (a run cut short by
    # kill -9 ended when its process died).
    intervals = sorted((r[3], ends.get((r[1], r[2]), killed_at if r[1] == standby else None)) for r in starts)
    assert all(end is not None for _, end in intervals), "a run of a live process never ended"
    for (_, previous_end), (start, _) in pairwise(intervals):
        assert start >= previous_end
    assert all(end - start >= TICK_WORK_SECONDS for start, end in intervals if end != killed_at)

    # The run records match, and the run cut short by kill -9 was closed by the next holder.
    runs = _runs(db, job="tick")
    assert len(runs) == len(starts)
    assert Counter(r.pid for r in runs) == Counter(r[1] for r in starts)
    cut = {r[2] for r in starts if (r[1], r[2]) not in ends}
    for run in runs:
        if run.pid == standby and run.summary is None:
            assert cut and run.outcome == "error" and run.error.startswith("interrupted")
        else:
            assert run.outcome == "ok" and run.summary["tick"] in {r[2] for r in starts}


def test_a_standby_runs_the_watcher_itself_until_it_holds_the_lease(fast, app, db, monkeypatch):
    """The active scheduler cannot report its own death or a wedged executor: its standby watches."""
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests:STANDBY_JOBS")
    other = "elsewhere:1:abc"
    lease.acquire(other, 60)
    service = fast()
    wait_for(lambda: len(_runs(db, job="watch-often", source="standby")) >= 2, 10, what="standby runs")
    assert not service.active
    assert _runs(db, job="succeed-often") == []  # scheduled jobs stay with the lease holder
    assert all(run.pid == os.getpid() and run.outcome == "ok" for run in _runs(db, source="standby"))

    with app.app_context():
        from app.extensions import db as _db

        with _db.engine.begin() as conn:  # the other holder dies: its lease expires now
            conn.execute(update(SchedulerLease).where(SchedulerLease.name == lease.SCHEDULER_LEASE)
                         .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    wait_for(lambda: service.active, 5, what="the takeover")
    active_since = utcnow()
    wait_for(lambda: len(_runs(db, job="watch-often", source="demo")) >= 2, 10, what="scheduled watcher runs")
    late = [r for r in _runs(db, job="watch-often", source="standby")
            if r.started_at > active_since + timedelta(seconds=1.5)]
    assert late == []  # once active, the watcher runs once per tick, as a scheduled job only


def test_standby_duties_can_be_turned_off(fast, app, db, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests:STANDBY_JOBS")
    monkeypatch.setitem(app.config, "SCHEDULER_STANDBY_DUTIES", False)
    lease.acquire("elsewhere:1:abc", 60)
    service = fast()
    time.sleep(2.5)
    assert not service.active
    assert _runs(db, source="standby") == []


def test_the_platform_watcher_is_a_standby_duty():
    from app.jobs.registry import JOBS

    assert [name for name, spec in JOBS.items() if spec.on_standby] == ["watch-platform"]
