"""The fail-over promise, measured on real ``flask scheduler run`` processes with the default
lease timings (lease 10 s, renew deadline 2/3 of it, retry 1 s):

- a holder that dies (kill -9) or whose host is lost (its process frozen: SIGSTOP keeps its
  connections open and releases nothing) is replaced by a standby within 15 s;
- a holder stopped cleanly (SIGTERM) is replaced within 3 s;
- across all of it, no interval job runs twice within half its interval, nor two runs at once.

Each takeover is measured from the signal to the standby's acquisition time in the lease table,
at the worst moment: just after the holder renewed its lease.
"""
from __future__ import annotations

import os
import signal
import time
from itertools import pairwise
from pathlib import Path

import pytest

from app.jobs import lease
from tests.conftest import DATABASE_URL
from tests.jobs_for_tests import TICK_SECONDS, TICK_WORK_SECONDS, clear_scheduler_state
from tests.test_jobs_scheduler import _freeze_outside_a_write, _lines, _spawn, _starts, wait_for

pytestmark = pytest.mark.slow

DIED_LIMIT = 15.0  # kill -9, host lost
CLEAN_STOP_LIMIT = 3.0  # SIGTERM


def _holder_pid() -> int | None:
    state = lease.current()
    if state is None or not state.active():
        return None
    return lease.parse_holder(state.holder)[1]


def _signal_just_after_a_renewal(pid: int, action) -> float:
    """Wait for ``pid`` to renew its lease, then act at once; returns the time of the action."""
    renewed = lease.current().renewed_at
    wait_for(lambda: lease.current().renewed_at != renewed, 5, step=0.005, what="a renewal")
    action(pid)
    return time.time()


def _in_a_run(ticks: Path, pid: int) -> bool:
    mine = [r for r in _lines(ticks) if r[1] == pid]
    return bool(mine) and mine[-1][0] == "start"


def _freeze_between_runs_just_after_a_renewal(pid: int, ticks: Path) -> float:
    """SIGSTOP ``pid`` just after a renewal, at a moment it runs no job. (A run under way when a
    host freezes finishes when the host wakes, beside the new holder's runs: the lease cannot
    fence it; the jobs are idempotent and the dispatcher's writes are fenced on their claim.)"""
    for _ in range(30):
        frozen_at = _signal_just_after_a_renewal(pid, _freeze_outside_a_write)
        if not _in_a_run(ticks, pid):
            return frozen_at
        os.kill(pid, signal.SIGCONT)
    raise AssertionError("the holder was always in a run")


def _takeover_seconds(by: int, since: float, limit: float) -> float:
    """Seconds from ``since`` to the lease acquisition by ``by`` (the lease table's own time)."""
    wait_for(lambda: _holder_pid() == by, limit + 5, step=0.02, what=f"process {by} to take the lease")
    return lease.current().acquired_at.timestamp() - since


def test_default_timings_keep_the_failover_promise(app, db, tmp_path: Path):
    clear_scheduler_state()
    ticks = tmp_path / "ticks.log"
    env = {**os.environ, "ONCOLINK_ENV": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "ONCOLINK_JOBS_MODULE": "tests.jobs_for_tests", "ONCOLINK_TEST_TICKS_FILE": str(ticks),
           "PYTHONUNBUFFERED": "1"}
    for name in ("SCHEDULER_LEASE_SECONDS", "SCHEDULER_RENEW_DEADLINE_SECONDS", "SCHEDULER_RETRY_SECONDS"):
        env.pop("ONCOLINK_" + name, None)  # the defaults are what is measured
    procs, logs, measured = {}, {}, {}

    def spawn(label: str) -> int:
        proc = _spawn(env, tmp_path / f"{label}.log")
        procs[proc.pid], logs[proc.pid] = proc, tmp_path / f"{label}.log"
        return proc.pid

    try:
        first, second = spawn("one"), spawn("two")
        holder = wait_for(_holder_pid, 60, what="a holder")
        [standby] = {first, second} - {holder}
        wait_for(lambda: len(_starts(ticks, holder)) >= 2, 30, what="ticks of the holder")

        # 1. Host lost: the holder freezes (connections open, nothing released).
        frozen_at = _freeze_between_runs_just_after_a_renewal(holder, ticks)
        measured["host lost (SIGSTOP)"] = _takeover_seconds(standby, frozen_at, DIED_LIMIT)
        wait_for(lambda: _starts(ticks, standby, after=frozen_at), 2 * TICK_SECONDS + 2, what="a run of the new holder")
        os.kill(holder, signal.SIGCONT)  # it comes back as a standby
        holder, standby = standby, holder

        # 2. kill -9 of the holder.
        killed_at = _signal_just_after_a_renewal(holder, lambda pid: os.kill(pid, signal.SIGKILL))
        procs[holder].wait(10)
        measured["kill -9"] = _takeover_seconds(standby, killed_at, DIED_LIMIT)
        wait_for(lambda: _starts(ticks, standby, after=killed_at), 2 * TICK_SECONDS + 2, what="a run of the new holder")
        holder, dead = standby, holder

        # 3. SIGTERM: the holder finishes its run, releases the lease; a fresh standby takes it.
        standby = spawn("three")
        wait_for(lambda: "started (lease" in logs[standby].read_text(errors="replace"), 60,
                 what="the new standby to poll")
        time.sleep(1.5)  # past its first try
        assert _holder_pid() == holder
        stopped_at = _signal_just_after_a_renewal(holder, lambda pid: os.kill(pid, signal.SIGTERM))
        measured["SIGTERM"] = _takeover_seconds(standby, stopped_at, CLEAN_STOP_LIMIT)
        assert procs[holder].wait(20) == 0
        wait_for(lambda: _starts(ticks, standby, after=stopped_at), 2 * TICK_SECONDS + 2, what="a run of the new holder")
        procs[standby].send_signal(signal.SIGTERM)
        assert procs[standby].wait(20) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)
        for pid, path in logs.items():
            print(f"--- scheduler process {pid} ---\n{path.read_text(errors='replace')}")
        print("--- takeover (s) ---\n" + "\n".join(f"{k}: {v:.2f}" for k, v in measured.items()))

    assert measured["host lost (SIGSTOP)"] <= DIED_LIMIT
    assert measured["kill -9"] <= DIED_LIMIT
    assert measured["SIGTERM"] <= CLEAN_STOP_LIMIT

    lines = _lines(ticks)
    starts = sorted((r for r in lines if r[0] == "start"), key=lambda r: r[3])
    ends = {(r[1], r[2]): r[3] for r in lines if r[0] == "end"}
    # No interval job ran twice within half its interval, whichever process ran it.
    for before, after in pairwise(starts):
        assert after[3] - before[3] >= TICK_SECONDS / 2, f"tick ran twice within half its interval: {before} {after}"
    # Never two runs at once (a run cut short by kill -9 ended when its process died).
    for before, after in pairwise(starts):
        end = ends.get((before[1], before[2]), killed_at if before[1] == dead else None)
        assert end is not None, f"a run of a live process never ended: {before}"
        assert after[3] >= end
    assert all(ends[(r[1], r[2])] - r[3] >= TICK_WORK_SECONDS for r in starts if (r[1], r[2]) in ends)
