"""The scheduler: APScheduler 3 running the registry's jobs, only while this process holds the lease.

``flask scheduler run`` is the production process; ``start_in_background`` runs the same loop in a
thread for the single-process demo. Nothing here is ever started by ``create_app``.

The timing model is Kubernetes' leader election (client-go ``tools/leaderelection``), with its three
settings:

- lease duration (``SCHEDULER_LEASE_SECONDS``, 10 s): how long a lease lasts after its last renewal;
  a standby may take it once it has expired, so a holder that died (kill -9, host lost) is replaced
  at most one lease duration plus one retry period after its last renewal;
- renew deadline (``SCHEDULER_RENEW_DEADLINE_SECONDS``, two thirds of the lease): a holder that has
  not renewed for this long stops scheduling (and its dispatcher stops sending) on its own, a
  margin before anyone else may hold the lease;
- retry period (``SCHEDULER_RETRY_SECONDS``, 1 s): the holder renews, and a standby tries to take
  the lease (with up to 20 % jitter, client-go's JitterFactor), this often.

The loop, every retry period:

- standby: try to take the lease; once it is ours, start an APScheduler ``BackgroundScheduler``
  whose jobs live in a persistent store (``apscheduler_jobs`` on the app's database). When the lease
  was taken from another holder, the jobs marked ``run_at_takeover`` (dispatch-outbox: it recovers
  at once the messages that holder left in flight) run now;
- active: renew the lease; if it was taken over (we stalled past its expiry) or cannot be renewed
  within the renew deadline, shut the scheduler down at once and go back to standby.

Every scheduled run checks again, just before it starts, that the lease is still ours, so a process
that wakes up from a long stall never runs a job beside the new holder; long runs (the dispatcher,
the inbound reader) ask ``SchedulerService.may_continue`` between messages. On SIGTERM/SIGINT (the
client-go ``ReleaseOnCancel`` behaviour) the scheduler stops taking new runs, lets the runs in
progress finish while keeping the lease, then releases the lease so a standby takes over at its
next try.

A standby is not idle: the jobs marked ``on_standby`` (the platform watcher) run in a thread of
their own while this process does NOT hold the lease, at their interval (``SCHEDULER_STANDBY_DUTIES``
turns that off). The active scheduler cannot report its own death, nor an executor that renews the
lease but runs nothing; its standby can.
"""
from __future__ import annotations

import atexit
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import func, select

from app.core.db import sqlite_deferred_transactions
from app.extensions import db

from . import lease
from .models import JobRun, RunSource
from .registry import Every, JobSpec, registry
from .runner import mark_interrupted, run_job, safe_error

log = logging.getLogger("oncolink.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"
THREAD_NAME = "oncolink-scheduler"
# client-go's JitterFactor: a standby waits between one and 1.2 retry periods between two tries.
JITTER_FACTOR = 1.2

_service: SchedulerService | None = None
_service_lock = threading.Lock()


def execute(name: str) -> None:
    """The function APScheduler calls for every job (stored by this dotted path in the job store)."""
    service = _service
    if service is None:
        log.warning("job %s fired but no scheduler service runs in this process", name)
        return
    service.execute(name)


def run_soon(name: str) -> bool:
    """Ask this process's scheduler, if it holds the lease, to run job ``name`` now rather than
    at its next tick (one run at a time still holds). False when no scheduler runs here (a CLI
    run): the job then runs at its next tick in the scheduler process."""
    service = _service
    scheduler = service.scheduler if service is not None and service.active else None
    if scheduler is None:
        return False
    try:
        scheduler.modify_job(name, next_run_time=datetime.now(timezone.utc))
    except Exception:  # noqa: BLE001 - unknown job or scheduler shutting down: the tick will do
        log.info("could not bring job %s forward", name)
        return False
    return True


def current_service() -> SchedulerService | None:
    """This process's scheduler service while it holds the lease and schedules, else None (a CLI
    run, a web worker, a standby)."""
    service = _service
    return service if service is not None and service.active else None


class SchedulerService:
    """Waits for the lease, schedules while holding it; one per process."""

    def __init__(self, app: Flask, *, source: str = RunSource.SCHEDULER):
        config = app.config
        self.app = app
        self.source = str(source)
        self.lease_seconds = float(config["SCHEDULER_LEASE_SECONDS"])
        self.retry_seconds = float(config.get("SCHEDULER_RETRY_SECONDS") or 1.0)
        self.renew_deadline = (float(config.get("SCHEDULER_RENEW_DEADLINE_SECONDS") or 0)
                               or round(self.lease_seconds * 2 / 3, 3))
        # client-go's own checks: lease > renew deadline > JitterFactor x retry period > 0.
        if not self.lease_seconds > self.renew_deadline > JITTER_FACTOR * self.retry_seconds > 0:
            raise ValueError("the scheduler lease needs SCHEDULER_LEASE_SECONDS > SCHEDULER_RENEW_DEADLINE_SECONDS"
                             " > 1.2 x SCHEDULER_RETRY_SECONDS > 0")
        self.max_workers = int(config["SCHEDULER_MAX_WORKERS"])
        # PostgreSQL cuts off a lease or job-store transaction frozen this long (lock_timeout and
        # idle_in_transaction_session_timeout): a frozen holder delays a takeover at most that much.
        self.cutoff = max(1.0, min(self.lease_seconds / 2, 2 * self.retry_seconds))
        self.holder = lease.new_holder_id()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._state_lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._active = False
        self._inflight = 0
        # time.monotonic() after which we must stop: the renew deadline counted from the start of
        # our last successful renewal (the lease itself lasts longer: that margin is the fence).
        self._lease_deadline = 0.0
        self._takeovers: list[str] = []  # holders we took the lease from, whose work is to recover
        self._rng = random.Random()
        self._job_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._thread: threading.Thread | None = None
        self.standby_duties = bool(config.get("SCHEDULER_STANDBY_DUTIES", True))

    # -- state seen from outside ------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while this process holds the lease and schedules jobs."""
        return self._active

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def scheduler(self) -> BackgroundScheduler | None:
        return self._scheduler

    def may_continue(self) -> bool:
        """True while a run in progress may go on: we schedule, are not stopping, and are within
        the renew deadline (checked by long runs before each message they send)."""
        return self._active and not self._stopping.is_set() and time.monotonic() < self._lease_deadline

    def pending_takeovers(self) -> list[str]:
        """Holders this service took the lease from and whose in-flight work is not yet recovered."""
        with self._state_lock:
            return list(self._takeovers)

    def takeovers_recovered(self, holders: Iterable[str]) -> None:
        done = set(holders)
        with self._state_lock:
            self._takeovers = [h for h in self._takeovers if h not in done]

    # -- running ----------------------------------------------------------------------------
    def run(self) -> None:
        """Block until ``stop()``: standby or active, as the lease decides."""
        _claim(self)
        try:
            with self.app.app_context():
                if self.standby_duties and (specs := _standby_specs()):
                    threading.Thread(target=self._standby_loop, args=(specs,), name=f"{THREAD_NAME}-standby",
                                     daemon=True).start()
                log.info("scheduler %s started (lease %ss, renew deadline %ss, retry every %ss)",
                         self.holder, self.lease_seconds, self.renew_deadline, self.retry_seconds)
                while not self._stopping.is_set():
                    self._step()
                    self._wake.wait(self._pause())
                    self._wake.clear()
                self._wind_down()
        finally:
            _unclaim(self)
            log.info("scheduler %s stopped", self.holder)

    def start_background(self) -> SchedulerService:
        _claim(self)
        self._thread = threading.Thread(target=self.run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to wind down (safe from a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop; with ``wait``, also wait for the background thread, which lets runs in progress
        finish, then releases the lease (APScheduler's ``shutdown(wait=...)`` meaning)."""
        self.stop()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _pause(self) -> float:
        if self._scheduler is not None:
            return self.retry_seconds
        return self.retry_seconds * self._rng.uniform(1.0, JITTER_FACTOR)

    def _step(self) -> None:
        try:
            if self._scheduler is None:
                self._try_to_acquire()
            else:
                self._keep_lease()
        except Exception as exc:
            log.error("scheduler loop: %s", safe_error(exc).splitlines()[0])
            if self._scheduler is not None and time.monotonic() >= self._lease_deadline:
                log.error("lease not renewed within the renew deadline: stop scheduling")
                self._stop_scheduling()

    def _try_to_acquire(self) -> None:
        if self._inflight:
            return  # runs started under a lost lease are still finishing here
        started = time.monotonic()
        got = lease.acquire(self.holder, self.lease_seconds, cutoff=self.cutoff)
        if got is None:
            return
        if self._stopping.is_set():  # asked to stop while waiting for the database
            lease.release(self.holder)
            return
        self._lease_deadline = started + self.renew_deadline
        log.info("lease acquired by %s%s", self.holder,
                 f" (previously held by {got.previous_holder})" if got.previous_holder else "")
        if got.previous_holder:
            with self._state_lock:
                self._takeovers.append(got.previous_holder)
            if previous := lease.parse_holder(got.previous_holder):
                closed = mark_interrupted(*previous)
                if closed:
                    log.warning("%d run(s) left open by %s marked interrupted", closed, got.previous_holder)
        try:
            self._start_scheduling()
        except Exception as exc:
            log.error("could not start scheduling: %s", safe_error(exc).splitlines()[0])
            self._stop_scheduling()
            lease.release(self.holder)
            return
        if got.previous_holder:
            for spec in registry().values():
                if spec.run_at_takeover:
                    run_soon(spec.name)

    def _keep_lease(self) -> None:
        started = time.monotonic()
        if lease.renew(self.holder, self.lease_seconds, cutoff=self.cutoff):
            self._lease_deadline = started + self.renew_deadline
            return
        log.warning("lease taken over by another scheduler: stop scheduling")
        self._stop_scheduling()

    def _start_scheduling(self) -> None:
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(
                url=db.engine.url.render_as_string(hide_password=False), tablename=JOBSTORE_TABLE,
                engine_options=self._jobstore_engine_options())},
            executors={"default": ThreadPoolExecutor(self.max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        scheduler.start(paused=True)
        with self._state_lock:
            self._scheduler = scheduler
            self._active = True
        register_jobs(scheduler)
        scheduler.resume()

    def _jobstore_engine_options(self) -> dict:
        options: dict = {"pool_pre_ping": True}
        if db.engine.dialect.name == "postgresql":
            # The store's transactions are tiny: a frozen holder must not keep its row locks
            # (and so block the standby's registration) for longer than the cut-off.
            ms = int(self.cutoff * 1000)
            options["connect_args"] = {"options": f"-c idle_in_transaction_session_timeout={ms} -c lock_timeout={ms}"}
        return options

    def _stop_scheduling(self) -> None:
        with self._state_lock:
            scheduler, self._scheduler = self._scheduler, None
            self._active = False
            self._takeovers = []  # whoever holds the lease next recovers them
        if scheduler is not None:
            try:
                scheduler.shutdown(wait=False)  # runs in progress go on; queued ones see _active
            except Exception as exc:
                log.error("scheduler shutdown: %s", safe_error(exc).splitlines()[0])

    def _wind_down(self) -> None:
        held = self._scheduler is not None
        self._stop_scheduling()
        # Keep the lease while our runs finish, so no standby starts a job beside them.
        last_renewal = time.monotonic()
        while self._inflight:
            if held and time.monotonic() - last_renewal >= self.retry_seconds:
                last_renewal = time.monotonic()
                try:
                    held = lease.renew(self.holder, self.lease_seconds, cutoff=self.cutoff)
                except Exception as exc:
                    log.error("lease renewal while stopping: %s", safe_error(exc).splitlines()[0])
            time.sleep(0.05)
        try:
            if lease.release(self.holder):
                log.info("lease released by %s", self.holder)
        except Exception as exc:
            log.error("lease release: %s", safe_error(exc).splitlines()[0])

    # -- a standby's own duties -----------------------------------------------------------
    def _standby_loop(self, specs: list[JobSpec]) -> None:
        """Run the ``on_standby`` jobs at their interval while we do not hold the lease."""
        due = {spec.name: time.monotonic() + spec.trigger.seconds for spec in specs}
        while not self._stopping.wait(min(1.0, self.retry_seconds)):
            for spec in specs:
                if time.monotonic() < due[spec.name]:
                    continue
                due[spec.name] = time.monotonic() + spec.trigger.seconds
                if self._active or self._stopping.is_set():
                    continue  # the active scheduler runs it as a scheduled job
                try:
                    with self.app.app_context():
                        run_job(spec.name, source=RunSource.STANDBY)
                except Exception as exc:  # the database is down: the external monitor covers that
                    log.error("standby job %s: %s", spec.name, safe_error(exc).splitlines()[0])

    # -- one scheduled run ------------------------------------------------------------------
    def execute(self, name: str) -> None:
        """Run one job for the scheduler; never raises (this is an executor thread)."""
        with self._state_lock:
            if not self._active:
                return
            self._inflight += 1
            job_lock = self._job_locks[name]
        try:
            if not job_lock.acquire(blocking=False):
                log.info("job %s still running from an earlier schedule: this run skipped", name)
                return
            try:
                self._run_if_holder(name)
            finally:
                job_lock.release()
        except Exception as exc:
            log.error("job %s could not be run: %s", name, safe_error(exc).splitlines()[0])
        finally:
            with self._state_lock:
                self._inflight -= 1

    def _run_if_holder(self, name: str) -> None:
        if time.monotonic() >= self._lease_deadline:
            log.warning("job %s not run: the lease may have expired", name)
            self._wake.set()
            return
        with self.app.app_context():
            if not lease.is_held(self.holder):
                log.warning("job %s not run: the lease is no longer ours", name)
                self._wake.set()  # the loop notices at once and stops scheduling
                return
            run_job(name, source=self.source)


def _standby_specs() -> list[JobSpec]:
    """The jobs a standby runs itself (``on_standby``; interval jobs only)."""
    return [spec for spec in registry().values() if spec.on_standby and isinstance(spec.trigger, Every)]


def register_jobs(scheduler: BackgroundScheduler, *, now: datetime | None = None) -> None:
    """Put every registry job in the (running, paused) scheduler's store; drop jobs no longer listed.

    A job whose schedule is unchanged keeps the next run time stored by the previous holder, so a
    tick missed while schedulers changed hands still runs once (coalesced) if it is within the
    job's misfire grace time, unless that would run an interval job twice within half its
    interval (see ``_catch_up``).
    """
    specs = registry()
    stored = {job.id: job for job in scheduler.get_jobs()}
    for job_id in stored.keys() - specs.keys():
        scheduler.remove_job(job_id)
    now = now or datetime.now(timezone.utc)
    last_starts = _last_starts()
    for spec in specs.values():
        trigger = spec.trigger.build()
        old = stored.get(spec.name)
        if (old is not None and old.next_run_time is not None and repr(old.trigger) == repr(trigger)
                and old.next_run_time >= now - timedelta(seconds=spec.grace_seconds)
                and _catch_up(spec, trigger, old.next_run_time, last_starts.get(spec.name), now)):
            options = {"next_run_time": old.next_run_time}
        else:
            options = {"next_run_time": trigger.get_next_fire_time(None, now)}
        scheduler.add_job(f"{__name__}:execute", trigger=trigger, args=[spec.name], id=spec.name,
                          name=spec.name, replace_existing=True, coalesce=True, max_instances=1,
                          misfire_grace_time=spec.grace_seconds, **options)


def _catch_up(spec: JobSpec, trigger, stored_next: datetime, last_start: datetime | None,
              now: datetime) -> bool:
    """Keep the stored next run time? Always when it is still ahead; a missed (past) tick of an
    interval job is run at once only if its last run started at least half an interval ago and
    its next tick on the grid is at least half an interval away, with a margin for the delay
    before the run starts (a quarter interval, at most 1 s); otherwise that tick does the work.
    So no interval job runs twice within half its interval, and a run cut short by a crash is
    redone at once or at the latest at the next tick."""
    interval = getattr(spec.trigger, "seconds", None)
    if stored_next >= now or not interval:
        return True
    half = timedelta(seconds=interval / 2)
    if last_start is not None and now - last_start < half:
        return False
    upcoming = trigger.get_next_fire_time(None, now)
    margin = timedelta(seconds=min(1.0, interval / 4))
    return upcoming is None or upcoming - now >= half + margin


def _last_starts() -> dict[str, datetime]:
    """When each job last started (any process, any source), from the run records."""
    with sqlite_deferred_transactions():
        rows = db.session.execute(select(JobRun.job, func.max(JobRun.started_at)).group_by(JobRun.job)).all()
        db.session.rollback()
    return {job: started for job, started in rows if started is not None}


def start_in_background(app: Flask) -> SchedulerService:
    """The demo's scheduler: the same lease-guarded loop in a daemon thread.

    Returns the service; call ``shutdown()`` on it when the demo stops. At interpreter exit it is
    waited for (10 s at most), so the lease is released even after ``shutdown(wait=False)``.
    Never call this from ``create_app``.
    """
    service = SchedulerService(app, source=RunSource.DEMO).start_background()
    atexit.register(service.shutdown, timeout=10)
    return service


def _claim(service: SchedulerService) -> None:
    global _service
    with _service_lock:
        if _service is not None and _service is not service:
            raise RuntimeError("a scheduler service already runs in this process")
        _service = service


def _unclaim(service: SchedulerService) -> None:
    global _service
    with _service_lock:
        if _service is service:
            _service = None
