"""The scheduler lease: one holder at a time, taken over after expiry, kept by renewal."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.jobs import lease
from app.jobs.models import SchedulerLease
from tests.conftest import DATABASE_URL

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
NAME = "test-lease"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_two_candidates_only_one_acquires(db):
    assert lease.acquire("a:1:x", 30, name=NAME, now=at(0)) == lease.Acquired(previous_holder=None)
    assert lease.acquire("b:2:y", 30, name=NAME, now=at(1)) is None
    assert lease.is_held("a:1:x", name=NAME, now=at(1))
    assert not lease.is_held("b:2:y", name=NAME, now=at(1))
    assert lease.current(NAME).holder == "a:1:x"


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_renew(db):
    lease.acquire("a:1:x", 2, name=NAME, now=at(0))
    assert lease.acquire("b:2:y", 2, name=NAME, now=at(1.9)) is None
    assert lease.acquire("b:2:y", 2, name=NAME, now=at(2.1)) == lease.Acquired(previous_holder="a:1:x")
    assert not lease.renew("a:1:x", 2, name=NAME, now=at(2.2))
    assert not lease.is_held("a:1:x", name=NAME, now=at(2.2))
    state = lease.current(NAME)
    assert state.holder == "b:2:y" and state.acquired_at == at(2.1) and state.expires_at == at(4.1)


def test_renewal_keeps_the_lease(db):
    lease.acquire("a:1:x", 2, name=NAME, now=at(0))
    for second in (1, 2, 3, 4):
        assert lease.renew("a:1:x", 2, name=NAME, now=at(second))
        assert lease.acquire("b:2:y", 2, name=NAME, now=at(second + 1.5)) is None
    state = lease.current(NAME)
    assert state.acquired_at == at(0) and state.renewed_at == at(4) and state.expires_at == at(6)


def test_holder_reacquiring_keeps_its_start(db):
    lease.acquire("a:1:x", 2, name=NAME, now=at(0))
    assert lease.acquire("a:1:x", 2, name=NAME, now=at(5)) == lease.Acquired(previous_holder=None)
    assert lease.current(NAME).acquired_at == at(0)


def test_release_lets_a_standby_in_at_once(db):
    lease.acquire("a:1:x", 30, name=NAME, now=at(0))
    assert not lease.release("b:2:y", name=NAME, now=at(1))  # not its lease
    assert lease.release("a:1:x", name=NAME, now=at(1))
    assert not lease.is_held("a:1:x", name=NAME, now=at(1))
    assert lease.acquire("b:2:y", 30, name=NAME, now=at(1.001)) == lease.Acquired(previous_holder="a:1:x")


def test_racing_candidates_elect_exactly_one(app, db):
    """Real concurrency, real clock: each candidate in its own thread and connection."""
    holders = [f"host{i}:{i}:race" for i in range(6)]
    barrier = threading.Barrier(len(holders))
    results: dict[str, object] = {}

    def candidate(holder: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[holder] = lease.acquire(holder, 30, name=NAME)
            except Exception as exc:  # reported below rather than lost in the thread
                results[holder] = exc

    threads = [threading.Thread(target=candidate, args=(h,)) for h in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    winners = [h for h, r in results.items() if r is not None]
    assert len(winners) == 1, results
    assert lease.current(NAME).holder == winners[0]
    assert lease.is_held(winners[0], name=NAME)


@pytest.mark.skipif(not DATABASE_URL.startswith("postgresql"), reason="SQLite: one host, one writer")
def test_a_holder_frozen_inside_a_lease_transaction_delays_a_standby_at_most_the_cutoff(app, db):
    """A frozen holder (paused VM, lost host) in the middle of a renewal holds the lease row's
    lock; PostgreSQL ends its session after the cut-off, so the standby takes over soon after."""
    lease.acquire("a:1:x", 0.5, name=NAME)
    locked, outcome = threading.Event(), {}

    def frozen_holder() -> None:
        with app.app_context():
            try:
                with lease._transaction(0.5, cutoff=1.0) as conn:
                    conn.execute(select(SchedulerLease.id).where(SchedulerLease.name == NAME).with_for_update())
                    locked.set()
                    time.sleep(6)  # frozen, idle in its transaction, holding the row lock
                    conn.execute(select(1))
                outcome["result"] = "kept its lock"
            except DBAPIError:
                outcome["result"] = "cut off by the server"

    thread = threading.Thread(target=frozen_holder)
    thread.start()
    assert locked.wait(10)
    time.sleep(0.6)  # the frozen holder's lease has expired
    started = time.monotonic()
    got = None
    while got is None and time.monotonic() - started < 10:
        try:
            got = lease.acquire("b:2:y", 30, name=NAME, cutoff=1.0)
        except DBAPIError:  # lock_timeout: waited the cut-off, try again
            pass
    waited = time.monotonic() - started
    thread.join(15)
    assert got == lease.Acquired(previous_holder="a:1:x")
    assert waited < 2.5, waited
    assert outcome == {"result": "cut off by the server"}


def test_holder_ids_name_the_host_and_process():
    import os
    import socket

    holder = lease.new_holder_id()
    assert lease.parse_holder(holder) == (socket.gethostname(), os.getpid())
    assert lease.new_holder_id() != holder
    assert lease.parse_holder("garbage") is None
