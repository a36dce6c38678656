"""Messages left in flight by a scheduler that is gone are recovered at takeover, not after the
outbox lease: claimed again, reconciled with the provider's list, then marked sent or sent once.

The real-process version (kill -9 of a scheduler while the provider is slow) is in
``test_notifications_takeover.py``.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.time import utcnow
from app.notifications.dispatcher import Dispatcher, DispatchSettings
from app.notifications.models import OutboxEntry
from app.notifications.outbox import enqueue_sms
from app.notifications.providers import get_provider
from app.notifications.tasks import dispatch_outbox
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    SENDER,
    fake_fixture,
    twilio_app_fixture,
    use_settings_fixture,
)

GONE = "deadhost:4242:abcdef"  # a scheduler whose lease was taken over
ALIVE = "otherhost:77:123456"  # a dispatcher run from the CLI, still running


def _queue(db, key: str, to: str, body: str) -> None:
    enqueue_sms(to=to, body=body, idempotency_key=key, purpose="page", ref=f"alert:{key}")
    db.session.commit()


def _left_sending(db, key: str, claimer: str) -> None:
    """As a dispatcher that claimed the row (outbox lease still 2 minutes ahead) and then died."""
    now = utcnow()
    db.session.execute(update(OutboxEntry).where(OutboxEntry.idempotency_key == key).values(
        state="sending", attempts=1, claimed_until=now + timedelta(minutes=2), claimed_by=claimer,
        first_attempt_at=now - timedelta(seconds=1)))
    db.session.commit()


def _rows(db) -> dict[str, OutboxEntry]:
    db.session.rollback()
    return {row.idempotency_key: row for row in db.session.scalars(select(OutboxEntry))}


def _dispatcher(app, claimer: str = "newholder:1:aaaaaa") -> Dispatcher:
    return Dispatcher(get_provider(app), DispatchSettings.from_config(app.config), claimer=claimer)


def test_a_claim_records_its_claimer(twilio_app, db, fake):
    _queue(db, "p1", "+33611000001", "Page 1")
    assert _dispatcher(twilio_app, "me:1:aaaaaa").claim(10)[0].attempts == 1
    assert _rows(db)["p1"].claimed_by == "me:1:aaaaaa"
    stats = dispatch_outbox()  # a CLI run outside the scheduler: its own id, of the same shape
    assert stats["recovered"] == 0
    _queue(db, "p2", "+33611000002", "Page 2")
    dispatch_outbox()
    claimer = _rows(db)["p2"].claimed_by
    assert claimer and claimer != "me:1:aaaaaa" and len(claimer.split(":")) == 3


def test_rows_of_a_holder_that_is_gone_are_recovered_at_once(twilio_app, db, fake):
    # p1 reached the provider before its dispatcher died; p2 did not; p3 belongs to a live
    # dispatcher; p4 is an ordinary due row.
    _queue(db, "p1", "+33611000001", "Page 1")
    _queue(db, "p2", "+33611000002", "Page 2")
    _queue(db, "p3", "+33611000003", "Page 3")
    _queue(db, "p4", "+33611000004", "Page 4")
    _left_sending(db, "p1", GONE)
    _left_sending(db, "p2", GONE)
    _left_sending(db, "p3", ALIVE)
    twilio = get_provider(twilio_app)
    already = twilio.send_sms("+33611000001", "Page 1", None)
    twilio.close()

    # Without recovery, nothing happens to them before the outbox lease ends (2 minutes).
    stats = _dispatcher(twilio_app).run()
    assert (stats.sent, stats.recovered) == (1, 0)
    assert {k: r.state for k, r in _rows(db).items()} == {"p1": "sending", "p2": "sending", "p3": "sending",
                                                          "p4": "sent"}

    stats = _dispatcher(twilio_app).run(recover_from=[GONE])
    assert (stats.recovered, stats.reconciled, stats.sent) == (2, 1, 1)
    rows = _rows(db)
    assert rows["p1"].state == "sent" and rows["p1"].provider_sid == already.sid  # adopted, not resent
    assert rows["p2"].state == "sent" and rows["p2"].claimed_by == "newholder:1:aaaaaa"
    assert rows["p3"].state == "sending" and rows["p3"].claimed_by == ALIVE  # not ours to take
    per_number = {m["to"]: 0 for m in fake.messages}
    for m in fake.messages:
        per_number[m["to"]] += 1
    assert per_number == {"+33611000001": 1, "+33611000002": 1, "+33611000004": 1}


def test_recovery_stops_when_the_scheduler_may_not_continue(twilio_app, db, fake):
    _queue(db, "p1", "+33611000001", "Page 1")
    _left_sending(db, "p1", GONE)
    stopped = Dispatcher(get_provider(twilio_app), DispatchSettings.from_config(twilio_app.config),
                         claimer="newholder:1:aaaaaa", keep_going=lambda: False)
    stats = stopped.run(recover_from=[GONE])
    assert (stats.recovered, stats.released, stats.sent) == (1, 1, 0)
    row = _rows(db)["p1"]
    # Handed back as it was: due now, and reconciled before any send by whoever claims it next.
    assert (row.state, row.attempts, row.first_attempt_at is not None) == ("pending", 1, True)
    assert fake.messages == []


def test_the_inbound_reader_under_a_stopping_scheduler_ends_at_its_next_slice():
    from app.notifications.tasks import _in_slices

    calls = []

    def process_queued(*, batch_size, time_budget_s):
        calls.append(time_budget_s)
        return {"processed": 50, "replies": 2, "handler_errors": 0, "batches": 1, "left": 500}

    allowed = iter([True, True, False])
    stats = _in_slices(process_queued, lambda: next(allowed), 50, 50.0)
    assert len(calls) == 3 and all(0 < budget <= 1.0 for budget in calls)
    assert stats == {"processed": 150, "replies": 6, "handler_errors": 0, "batches": 3, "left": 500}

    drained = iter([{"processed": 50, "replies": 0, "handler_errors": 0, "batches": 1, "left": 7},
                    {"processed": 7, "replies": 1, "handler_errors": 0, "batches": 1}])
    stats = _in_slices(lambda **kw: next(drained), lambda: True, 50, 0)
    assert stats == {"processed": 57, "replies": 1, "handler_errors": 0, "batches": 2}
