"""Pages held ``sending`` by a scheduler killed with kill -9 while the provider is slow to answer
reach the phone exactly once, within the takeover time plus 5 s.

Two real ``flask scheduler run`` processes (default lease timings) dispatch the outbox through
the real Twilio SDK to a FakeTwilio in this process. Two pages are in flight when the holder is
killed: one the provider has already accepted but not yet answered (the new holder must find it
in the provider's list and not send it again), one the provider never took (it must be sent
once). Without recovery at takeover both would wait for the outbox lease (120 s).
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from app.jobs import lease
from app.notifications.models import OutboxEntry
from app.notifications.outbox import enqueue_sms
from tests.conftest import DATABASE_URL
from tests.jobs_for_tests import clear_scheduler_state
from tests.test_jobs_scheduler import _spawn, wait_for
from tests.test_notifications_helpers import PUBLIC, SENDER, SID, TOKEN, fake_fixture  # noqa: F401

pytestmark = pytest.mark.slow

ACCEPTED_SLOWLY = "+33639980101"  # the provider took the page, its answer never came
NEVER_TAKEN = "+33639980102"  # the provider hung and took nothing
TAKEOVER_LIMIT = 15.0
RECOVERY_LIMIT = 5.0


def _rows(db) -> dict[str, OutboxEntry]:
    db.session.rollback()
    return {row.to_number: row for row in db.session.scalars(select(OutboxEntry))}


def _holder_pid() -> int | None:
    state = lease.current()
    return lease.parse_holder(state.holder)[1] if state is not None and state.active() else None


def test_a_page_in_flight_at_kill_9_reaches_the_phone_once_soon_after_the_takeover(app, db, fake, tmp_path: Path):
    clear_scheduler_state()
    env = {**os.environ, "ONCOLINK_ENV": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "ONCOLINK_JOBS_MODULE": "tests.jobs_for_tests:DISPATCH_JOBS", "PYTHONUNBUFFERED": "1",
           "ONCOLINK_SMS_PROVIDER": "twilio", "ONCOLINK_TWILIO_ACCOUNT_SID": SID,
           "ONCOLINK_TWILIO_AUTH_TOKEN": TOKEN, "ONCOLINK_TWILIO_FROM_NUMBER": SENDER,
           "ONCOLINK_TWILIO_API_BASE_URL": fake.base_url, "ONCOLINK_PUBLIC_BASE_URL": PUBLIC,
           "ONCOLINK_OUTBOX_RATE_PER_SECOND": "10"}
    for name in ("SCHEDULER_LEASE_SECONDS", "SCHEDULER_RENEW_DEADLINE_SECONDS", "SCHEDULER_RETRY_SECONDS",
                 "OUTBOX_LEASE_SECONDS", "TWILIO_TIMEOUT_SECONDS"):
        env.pop("ONCOLINK_" + name, None)  # the defaults: outbox lease 120 s, provider timeout 10 s
    procs, logs = {}, {}

    def spawn(label: str) -> int:
        proc = _spawn(env, tmp_path / f"{label}.log")
        procs[proc.pid], logs[proc.pid] = proc, tmp_path / f"{label}.log"
        return proc.pid

    try:
        first = spawn("one")
        wait_for(lambda: _holder_pid() == first, 60, what="the first scheduler to hold the lease")
        second = spawn("two")
        wait_for(lambda: "started (lease" in logs[second].read_text(errors="replace"), 60,
                 what="the standby to poll")

        fake.slow_for(ACCEPTED_SLOWLY, 300)
        fake.slow_for(NEVER_TAKEN, 300, accepted=False)
        for n, number in enumerate((ACCEPTED_SLOWLY, NEVER_TAKEN)):
            enqueue_sms(to=number, body=f"Onco'Link: alerte rouge {n + 1}, code A{n + 1}.",
                        idempotency_key=f"page:{n}", purpose="page", ref=f"alert:{n}")
        db.session.commit()
        holder_id = lease.current().holder
        wait_for(lambda: fake.requests_count >= 2 and len(fake.messages_to(ACCEPTED_SLOWLY)) == 1, 20,
                 what="both pages in flight at the provider")
        rows = _rows(db)
        assert {r.state for r in rows.values()} == {"sending"}
        assert {r.claimed_by for r in rows.values()} == {holder_id}  # the scheduler's lease holder id

        procs[first].send_signal(signal.SIGKILL)
        killed_at = time.time()
        procs[first].wait(10)

        wait_for(lambda: _holder_pid() == second, TAKEOVER_LIMIT + 5, step=0.02, what="the takeover")
        took_over = lease.current().acquired_at.timestamp()
        wait_for(lambda: {r.state for r in _rows(db).values()} == {"sent"}, RECOVERY_LIMIT + 10, step=0.05,
                 what="both pages recorded as sent")
        time.sleep(max(0.0, took_over + RECOVERY_LIMIT + 4 - time.time()))  # two more dispatch ticks
        procs[second].send_signal(signal.SIGTERM)
        assert procs[second].wait(20) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for pid, path in logs.items():
            print(f"--- scheduler process {pid} ---\n{path.read_text(errors='replace')}")

    assert took_over - killed_at <= TAKEOVER_LIMIT
    # Each page reached the phone exactly once.
    assert Counter(m["to"] for m in fake.messages) == {ACCEPTED_SLOWLY: 1, NEVER_TAKEN: 1}
    rows = _rows(db)
    sids = {m["to"]: m["sid"] for m in fake.messages}
    assert {n: r.provider_sid for n, r in rows.items()} == sids  # the first adopted, not resent
    # Recovered within the takeover time plus 5 s: the adopted page marked sent, the other sent.
    resent = next(m for m in fake.messages if m["to"] == NEVER_TAKEN)
    assert resent["created_at"].timestamp() - took_over <= RECOVERY_LIMIT
    assert rows[ACCEPTED_SLOWLY].sent_at.timestamp() - took_over <= RECOVERY_LIMIT
    assert all(r.attempts == 2 for r in rows.values())
    print(f"\ntakeover {took_over - killed_at:.2f} s after kill -9; page sent again "
          f"{resent['created_at'].timestamp() - took_over:.2f} s and page adopted "
          f"{rows[ACCEPTED_SLOWLY].sent_at.timestamp() - took_over:.2f} s after the takeover")
