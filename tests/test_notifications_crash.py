"""kill -9 and concurrent dispatchers: every message reaches the provider exactly once.

Dispatchers run as real subprocesses (``flask outbox dispatch``) on the test database
(SQLite file, or PostgreSQL from TEST_DATABASE_URL) against a FakeTwilio in this process.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.notifications.models import Message, OutboxEntry
from app.notifications.outbox import enqueue_sms
from tests.conftest import DATABASE_URL
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures)
    PUBLIC,
    SENDER,
    SID,
    TOKEN,
    fake_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 1000
LEASE_S = 4.0

pytestmark = pytest.mark.slow


def _env(fake, rate: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ONCOLINK_ENV="testing", TEST_DATABASE_URL=DATABASE_URL, ONCOLINK_SMS_PROVIDER="twilio",
        ONCOLINK_TWILIO_ACCOUNT_SID=SID, ONCOLINK_TWILIO_AUTH_TOKEN=TOKEN,
        ONCOLINK_TWILIO_FROM_NUMBER=SENDER, ONCOLINK_TWILIO_API_BASE_URL=fake.base_url,
        ONCOLINK_PUBLIC_BASE_URL=PUBLIC, ONCOLINK_TWILIO_TIMEOUT_SECONDS="0.5",
        ONCOLINK_OUTBOX_RATE_PER_SECOND=str(rate), ONCOLINK_OUTBOX_LEASE_SECONDS=str(LEASE_S),
        ONCOLINK_OUTBOX_BATCH_SIZE="25",
    )
    return env


class DispatcherProcess:
    """``flask outbox dispatch --time-budget 0`` in a subprocess, output in a file."""

    def __init__(self, fake, rate: float):
        self.out = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by wait() or kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "dispatch", "--time-budget", "0"],
            cwd=ROOT, env=_env(fake, rate), stdout=self.out, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 120) -> dict[str, float]:
        rc = self.proc.wait(timeout)
        self.out.seek(0)
        output = self.out.read()
        self.out.close()
        assert rc == 0, output[-3000:]
        last = output.strip().splitlines()[-1]
        return {k: float(v) for k, v in (pair.split("=") for pair in last.split())}

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.out.close()


def _queue(db, total: int = TOTAL) -> None:
    for i in range(total):
        # A distinct body per message, so the fake's record tells them apart; the key stays ours.
        enqueue_sms(to=f"+3361{i % 50:08d}", body=f"Test {i:04d}", idempotency_key=f"crash:{i}",
                    purpose="test", ref=f"test:{i}")
    db.session.commit()


def _assert_exactly_once(db, fake) -> None:
    db.session.rollback()
    received = fake.messages
    per_body = collections.Counter(m["body"] for m in received)
    duplicates = {body: n for body, n in per_body.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} messages sent twice, e.g. {list(duplicates)[:5]}"
    assert len(received) == TOTAL
    sid_of = {m["body"]: m["sid"] for m in received}
    rows = db.session.execute(select(OutboxEntry.state, OutboxEntry.body, OutboxEntry.provider_sid)).all()
    assert collections.Counter(r.state for r in rows) == {"sent": TOTAL}
    assert all(r.provider_sid == sid_of[r.body] for r in rows)
    linked = db.session.scalars(select(Message.outbox_id).where(Message.outbox_id.is_not(None))).all()
    assert len(linked) == len(set(linked)) == TOTAL


def test_kill_9_mid_run_then_restart_sends_each_message_once(app, db, fake):
    _queue(db)
    first = DispatcherProcess(fake, rate=400)
    deadline = time.monotonic() + 90
    # 310: in the middle of a claimed batch of 25, so claimed-but-unsent rows are orphaned too.
    while len(fake.messages) < 310:
        assert first.proc.poll() is None, "the dispatcher ended before it could be killed"
        assert time.monotonic() < deadline, "the dispatcher did not get going"
        time.sleep(0.002)
    first.kill()
    time.sleep(0.3)  # a request in flight at the kill may still land at the fake
    at_provider = len(fake.messages)
    assert 310 <= at_provider < TOTAL

    db.session.rollback()
    states = collections.Counter(db.session.scalars(select(OutboxEntry.state)).all())
    recorded = states["sent"]
    orphans = states["sending"]
    assert orphans > 0 and states["sent"] + states["sending"] + states["pending"] == TOTAL
    unrecorded_sends = at_provider - recorded  # accepted by the provider, death before the commit
    assert 0 <= unrecorded_sends <= orphans

    time.sleep(LEASE_S + 0.5)  # the dead dispatcher's lease runs out
    stats = DispatcherProcess(fake, rate=400).wait()

    _assert_exactly_once(db, fake)
    assert stats["reconciled"] == unrecorded_sends
    assert stats["sent"] == TOTAL - at_provider
    print(f"\nkill -9 after {at_provider} at the provider: {recorded} recorded, {orphans} orphaned "
          f"claims, {unrecorded_sends} adopted by reconciliation, {int(stats['sent'])} sent after restart")


def test_two_dispatchers_at_once_never_send_twice(app, db, fake):
    _queue(db)
    runs = [DispatcherProcess(fake, rate=300), DispatcherProcess(fake, rate=300)]
    stats = [run.wait() for run in runs]

    _assert_exactly_once(db, fake)
    assert sum(s["sent"] for s in stats) == TOTAL
    assert sum(s["reconciled"] for s in stats) == 0
    print(f"\ntwo dispatchers: {[int(s['sent']) for s in stats]} sent each")
