"""The dispatcher against the real Twilio SDK and the FakeTwilio: retries, failures, crashes."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEvent
from app.notifications.dispatcher import Dispatcher, DispatchSettings
from app.notifications.models import Message, OutboxEntry
from app.notifications.outbox import enqueue_call, enqueue_sms, requeue_dead
from app.notifications.pacing import TokenBucket, backoff_delay
from app.notifications.providers import (
    PermanentProviderError,
    TemporaryProviderError,
    TwilioProvider,
    classify_twilio_error,
    get_provider,
)
from app.notifications.tasks import dispatch_outbox
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    SENDER,
    clock_fixture,
    count,
    fake_fixture,
    twilio_app_fixture,
    use_settings_fixture,
)

PHONE = "+33611223344"


def _entry(db, key: str) -> OutboxEntry:
    db.session.rollback()
    return db.session.scalar(select(OutboxEntry).where(OutboxEntry.idempotency_key == key))


def _queue(db, key: str = "k", body: str = "Bonjour", **kw) -> None:
    enqueue_sms(to=kw.pop("to", PHONE), body=body, idempotency_key=key, purpose="test", **kw)
    db.session.commit()


def test_http_500_is_retried_with_growing_backoff_then_sent_once(twilio_app, db, fake, clock):
    fake.fail_next(2, status=500)
    _queue(db)
    start = clock.now

    assert dispatch_outbox()["retried"] == 1
    first = _entry(db, "k")
    assert (first.state, first.attempts, first.last_error) == ("pending", 1, "HTTP 500 error 20500")
    first_delay = first.next_attempt_at - start
    assert timedelta(seconds=24) <= first_delay <= timedelta(seconds=30)

    assert dispatch_outbox()["claimed"] == 0  # not due yet: nothing is hammered
    clock.advance(seconds=30)
    assert dispatch_outbox()["retried"] == 1
    second = _entry(db, "k")
    second_delay = second.next_attempt_at - clock.now
    assert second.attempts == 2 and timedelta(seconds=48) <= second_delay <= timedelta(seconds=60)

    clock.advance(seconds=60)
    stats = dispatch_outbox()
    assert (stats["sent"], stats["reconciled"]) == (1, 0)
    assert len(fake.messages) == 1
    done = _entry(db, "k")
    assert done.state == "sent" and done.attempts == 3 and done.provider_sid == fake.messages[0]["sid"]
    clock.advance(hours=2)
    assert dispatch_outbox()["claimed"] == 0 and len(fake.messages) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_and_unavailable_are_temporary(twilio_app, db, fake, clock, status):
    fake.fail_next(1, status=status)
    _queue(db)
    assert dispatch_outbox()["retried"] == 1
    clock.advance(seconds=31)
    assert dispatch_outbox()["sent"] == 1 and len(fake.messages) == 1


def test_hanging_provider_times_out_then_everything_goes_once(twilio_app, db, fake, clock, use_settings):
    use_settings(TWILIO_TIMEOUT_SECONDS=0.3)
    for i in range(3):
        _queue(db, key=f"k{i}", body=f"Message {i}")
    fake.hang_next(3, seconds=2.0)  # hangs for a while: every request of the first pass

    started = time.monotonic()
    stats = dispatch_outbox()
    assert stats["retried"] == 3 and fake.messages == []
    assert time.monotonic() - started < 3.0  # bounded by the timeout, not by the hang
    assert {_entry(db, f"k{i}").last_error for i in range(3)} == {"timeout"}

    clock.advance(seconds=31)
    stats = dispatch_outbox()
    assert stats["sent"] == 3
    assert sorted(m["body"] for m in fake.messages) == ["Message 0", "Message 1", "Message 2"]
    clock.advance(hours=1)
    assert dispatch_outbox()["claimed"] == 0 and len(fake.messages) == 3


def test_unsubscribed_recipient_fails_for_good_and_opts_the_patient_out(twilio_app, db, fake, clock,
                                                                        circuit):
    patient = circuit.patient
    fake.error_for(patient.phone, 21610)
    _queue(db, key="k-stop", to=patient.phone, patient_id=patient.id)

    stats = dispatch_outbox()

    assert stats["failed"] == 1
    entry = _entry(db, "k-stop")
    assert (entry.state, entry.last_error_code) == ("failed", 21610)
    db.session.refresh(patient)
    assert patient.opted_out_at == clock.now
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "opt_out")).all()
    assert [(a.patient_id, a.detail["source"]) for a in audit] == [(patient.id, "provider error 21610")]
    requests_before = fake.requests_count
    clock.advance(days=2)
    assert dispatch_outbox()["claimed"] == 0
    assert fake.requests_count == requests_before and fake.messages == []


@pytest.mark.parametrize("code", [21614, 21211])
def test_invalid_or_landline_number_fails_without_opt_out(twilio_app, db, fake, clock, circuit, code):
    patient = circuit.patient
    fake.error_for(patient.phone, code)
    _queue(db, key="k-bad", to=patient.phone, patient_id=patient.id)
    assert dispatch_outbox()["failed"] == 1
    assert _entry(db, "k-bad").last_error_code == code
    db.session.refresh(patient)
    assert patient.opted_out_at is None
    clock.advance(days=1)
    assert dispatch_outbox()["claimed"] == 0


def test_dead_after_max_attempts_then_requeued_by_hand(twilio_app, db, fake, clock, use_settings):
    use_settings(OUTBOX_MAX_ATTEMPTS=3)
    fake.fail_next(3, status=500)
    _queue(db, key="k-dead")
    outcomes = []
    for _ in range(4):
        stats = dispatch_outbox()
        outcomes.append((stats["retried"], stats["dead"]))
        clock.advance(hours=1)
    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0)]
    entry = _entry(db, "k-dead")
    assert entry.state == "dead" and entry.attempts == 3 and fake.messages == []

    requeue_dead(entry)
    db.session.commit()
    stats = dispatch_outbox()
    assert stats["sent"] == 1 and len(fake.messages) == 1


class CrashAfterSend(BaseException):
    """Stands for the process dying between the provider's answer and the commit."""


def test_crash_between_send_and_commit_is_reconciled_not_resent(twilio_app, db, fake, clock,
                                                                 monkeypatch):
    _queue(db, key="k-crash", body="Unique texte 1", ref="test:crash")
    _queue(db, key="k-other", body="Unique texte 2", to="+33622334455")

    def crash(*args, **kwargs):
        raise CrashAfterSend()

    monkeypatch.setattr(Dispatcher, "_record_sent", crash)  # one send recorded alone
    monkeypatch.setattr(Dispatcher, "_record_sent_group", crash)  # or several at once
    with pytest.raises(CrashAfterSend):
        dispatch_outbox()
    monkeypatch.undo()
    db.session.rollback()
    # Both reached the provider (the sending threads do not wait for the recording) ...
    assert sorted(m["body"] for m in fake.messages) == ["Unique texte 1", "Unique texte 2"]
    orphan = _entry(db, "k-crash")
    assert orphan.state == "sending" and orphan.provider_sid is None  # ... but neither was recorded
    assert _entry(db, "k-other").state == "sending"

    # Before the lease runs out nobody touches them (their dispatcher may still be alive).
    assert dispatch_outbox()["claimed"] == 0 and len(fake.messages) == 2

    clock.advance(seconds=61)  # lease (60 s in these tests) expired
    stats = dispatch_outbox()
    # Both are found at the provider and adopted; nothing goes out again.
    assert (stats["reconciled"], stats["sent"]) == (2, 0)
    assert sorted(m["body"] for m in fake.messages) == ["Unique texte 1", "Unique texte 2"]
    entry = _entry(db, "k-crash")
    first_sid = next(m["sid"] for m in fake.messages if m["body"] == "Unique texte 1")
    assert entry.state == "sent" and entry.provider_sid == first_sid and entry.attempts == 2
    message = db.session.scalar(select(Message).where(Message.provider_sid == first_sid))
    assert message.outbox_id == entry.id and message.ref == "test:crash"


class AcceptedThenTimeout:
    """A provider whose answer is lost after it accepted the message (ambiguous timeout)."""

    def __init__(self, inner):
        self.inner, self.sender, self.lost = inner, inner.sender, 0

    def send_sms(self, to, body, status_callback):
        result = self.inner.send_sms(to, body, status_callback)
        if not self.lost:
            self.lost += 1
            raise TemporaryProviderError("timeout")
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_timeout_after_acceptance_is_adopted_on_retry(twilio_app, db, fake, clock, use_settings):
    use_settings(OUTBOX_SEND_WORKERS=1)  # which send loses its answer must not depend on timing
    _queue(db, key="k-ambiguous", body="Texte ambigu")
    _queue(db, key="k-same-body-earlier", body="Texte ambigu", to="+33699887766")
    provider = AcceptedThenTimeout(get_provider(twilio_app))
    dispatcher = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config))
    try:
        first = dispatcher.run()
        assert (first.retried, first.sent) == (1, 1)
        clock.advance(seconds=31)
        second = dispatcher.run()
    finally:
        provider.close()
    assert (second.reconciled, second.sent) == (1, 0)
    assert len(fake.messages_to(PHONE)) == 1
    assert _entry(db, "k-ambiguous").provider_sid == fake.messages_to(PHONE)[0]["sid"]


def test_reconciliation_ignores_messages_already_attributed(twilio_app, db, fake, clock):
    """Same recipient, same text, sent earlier for another row: that one is not adopted."""
    _queue(db, key="k-first", body="Rappel")
    dispatch_outbox()
    _queue(db, key="k-second", body="Rappel")
    fake.fail_next(1, status=500)  # the second row's first attempt never reaches the provider
    assert dispatch_outbox()["retried"] == 1
    clock.advance(seconds=31)
    stats = dispatch_outbox()
    assert (stats["sent"], stats["reconciled"]) == (1, 0)
    assert len(fake.messages) == 2
    assert _entry(db, "k-first").provider_sid != _entry(db, "k-second").provider_sid


def test_a_failing_reconciliation_never_resends(twilio_app, db, fake, clock, monkeypatch):
    _queue(db, key="k-r")
    fake.fail_next(1, status=500)
    dispatch_outbox()
    clock.advance(seconds=31)

    def broken(self, to, since, limit=500):
        raise TemporaryProviderError("connection error")

    monkeypatch.setattr(TwilioProvider, "recent_messages", broken)
    stats = dispatch_outbox()
    assert stats["retried"] == 1 and fake.messages == []
    assert _entry(db, "k-r").last_error == "connection error"


def test_orphaned_call_is_reconciled_by_recipient(twilio_app, db, fake, clock, monkeypatch):
    enqueue_call(to=PHONE, idempotency_key="call-crash", purpose="checkin_call", twiml_path="/voice/1")
    db.session.commit()
    monkeypatch.setattr(Dispatcher, "_record_sent", lambda *a, **k: (_ for _ in ()).throw(CrashAfterSend()))
    with pytest.raises(CrashAfterSend):
        dispatch_outbox()
    monkeypatch.undo()
    db.session.rollback()
    clock.advance(seconds=61)
    assert dispatch_outbox()["reconciled"] == 1
    assert len(fake.calls) == 1 and _entry(db, "call-crash").provider_sid == fake.calls[0]["sid"]


def test_time_budget_hands_unsent_claims_back(twilio_app, db, fake):
    for i in range(5):
        _queue(db, key=f"k{i}", body=f"Texte {i}")
    # Bucket created, run started, loop check, then one tick per row: the 3rd is past the budget.
    ticks = iter([0.0, 0.0, 0.5, 1.5, 2.5])
    provider = get_provider(twilio_app)
    dispatcher = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config),
                            monotonic=lambda: next(ticks, 99.0))
    try:
        stats = dispatcher.run(time_budget_s=10)
    finally:
        provider.close()
    assert (stats.claimed, stats.sent, stats.released) == (5, 2, 3)
    rows = [_entry(db, f"k{i}") for i in range(5)]
    assert [r.state for r in rows] == ["sent", "sent", "pending", "pending", "pending"]
    assert [r.attempts for r in rows[2:]] == [0, 0, 0] and rows[2].first_attempt_at is None
    assert dispatch_outbox()["sent"] == 3 and len(fake.messages) == 5


@pytest.mark.parametrize("burst, free", [(1.0, 1), (0.0, 4)])  # 0: a tenth of the rate
def test_rate_limit_spaces_sends(twilio_app, db, fake, use_settings, burst, free):
    use_settings(OUTBOX_RATE_PER_SECOND=40.0, OUTBOX_RATE_BURST=burst)
    for i in range(21):
        _queue(db, key=f"k{i}", body=f"Texte {i}")
    started = time.monotonic()
    assert dispatch_outbox()["sent"] == 21
    # The first ``free`` tokens are there at once, then one every 25 ms.
    assert time.monotonic() - started >= (21 - free) / 40
    created = sorted(m["created_at"] for m in fake.messages)
    assert (created[-1] - created[0]).total_seconds() >= (21 - free) / 40 - 0.05


def test_token_bucket_with_a_fake_clock():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(5.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(11):
        bucket.take()
    assert now[0] == pytest.approx(2.0)  # 10 waits of 0.2 s after the free first token
    unlimited = TokenBucket(0, monotonic=lambda: now[0], sleep=sleep)
    before = len(slept)
    for _ in range(100):
        unlimited.take()
    assert len(slept) == before


def test_backoff_is_capped_and_jittered():
    delays = [backoff_delay(n, base_s=30, max_s=600, jitter=0.2).total_seconds() for n in range(1, 10)]
    assert 24 <= delays[0] <= 30 and 48 <= delays[1] <= 60 and 96 <= delays[2] <= 120
    assert all(480 <= d <= 600 for d in delays[5:])


def test_error_classification():
    from requests.exceptions import ConnectionError, ConnectTimeout, ReadTimeout
    from twilio.base.exceptions import TwilioRestException

    def rest(status, code):
        return classify_twilio_error(TwilioRestException(status, "uri", "msg", code))

    assert isinstance(rest(400, 21610), PermanentProviderError) and rest(400, 21610).code == 21610
    assert isinstance(rest(400, 21614), PermanentProviderError)
    assert isinstance(rest(400, 21211), PermanentProviderError)
    for status, code in [(500, 20500), (502, None), (503, 20503), (429, 20429), (401, 20003)]:
        assert isinstance(rest(status, code), TemporaryProviderError)
    for exc in (ReadTimeout(), ConnectTimeout(), ConnectionError()):
        assert isinstance(classify_twilio_error(exc), TemporaryProviderError)


def test_message_rows_get_the_provider_sender(twilio_app, db, fake):
    _queue(db, key="k-from")
    dispatch_outbox()
    message = db.session.scalar(select(Message))
    assert message.from_number == SENDER and count(db, Message) == 1


class CallbackFirst:
    """The provider's status callback is stored (by a web worker) before the send is recorded."""

    def __init__(self, inner, app):
        self.inner, self.sender, self.app = inner, inner.sender, app

    def send_sms(self, to, body, status_callback):
        from app.extensions import db as _db
        from app.notifications.status import apply_status_callback

        result = self.inner.send_sms(to, body, status_callback)
        with self.app.app_context():
            apply_status_callback(sid=result.sid, status="delivered", channel="sms", to_number=to)
            _db.session.commit()
            _db.session.remove()
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_early_callback_row_is_merged_not_duplicated(twilio_app, db, fake):
    from app.notifications.signals import message_status_changed

    seen = []
    message_status_changed.connect(listener := lambda m: seen.append((m.ref, m.status)))
    _queue(db, key="k-early", ref="checkin:4")
    provider = CallbackFirst(get_provider(twilio_app), twilio_app)
    try:
        stats = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config)).run()
    finally:
        provider.close()
        message_status_changed.disconnect(listener)
    assert (stats.sent, stats.lost) == (1, 0)
    [message] = db.session.scalars(select(Message)).all()
    entry = _entry(db, "k-early")
    assert (message.outbox_id, message.status, message.ref) == (entry.id, "delivered", "checkin:4")
    assert entry.state == "sent" and entry.provider_sid == message.provider_sid
    assert seen == [("checkin:4", "delivered")]


def test_a_lease_shorter_than_two_provider_calls_is_refused():
    from config import ConfigError

    with pytest.raises(ConfigError, match="LEASE"):
        DispatchSettings(public_base_url="https://x", lease_s=20, provider_timeout_s=10)
    DispatchSettings(public_base_url="https://x", lease_s=22, provider_timeout_s=10)


# ---------------------------------------------------------------- sending threads (batches)

def test_pooled_crash_while_recording_is_reconciled_not_resent(twilio_app, db, fake, clock, monkeypatch,
                                                               use_settings):
    """Several sends in flight when recording fails: what reached the provider is adopted, the rest sent."""
    import app.notifications.dispatcher as dispatcher_module

    use_settings(OUTBOX_SEND_WORKERS=4)
    for i in range(8):
        _queue(db, key=f"k{i}", body=f"Texte pool {i}", to=f"+336770000{i:02d}")

    def crash(*args, **kwargs):
        raise CrashAfterSend()

    monkeypatch.setattr(dispatcher_module, "record_outbound", crash)  # one send recorded alone
    monkeypatch.setattr(dispatcher_module, "insert_outbound_messages", crash)  # several at once
    with pytest.raises(CrashAfterSend):
        dispatch_outbox()
    monkeypatch.undo()
    db.session.rollback()
    at_provider = len(fake.messages)
    assert 1 <= at_provider <= 8
    assert {_entry(db, f"k{i}").state for i in range(8)} == {"sending"}  # nothing was recorded

    clock.advance(seconds=61)  # the lease runs out
    stats = dispatch_outbox()
    assert (stats["reconciled"], stats["sent"]) == (at_provider, 8 - at_provider)
    bodies = sorted(m["body"] for m in fake.messages)
    assert bodies == sorted(f"Texte pool {i}" for i in range(8))  # each exactly once
    sid_of = {m["body"]: m["sid"] for m in fake.messages}
    for i in range(8):
        entry = _entry(db, f"k{i}")
        assert entry.state == "sent" and entry.provider_sid == sid_of[f"Texte pool {i}"]
    assert count(db, Message) == 8


def test_rate_is_never_exceeded_in_any_second_at_the_provider(twilio_app, db, fake, use_settings):
    use_settings(OUTBOX_RATE_PER_SECOND=20.0, OUTBOX_RATE_BURST=5.0, OUTBOX_SEND_WORKERS=4)
    for i in range(50):
        _queue(db, key=f"k{i}", body=f"Cadence {i}", to=f"+336780000{i:02d}")
    stats = dispatch_outbox()
    assert stats["sent"] == 50 and len(fake.messages) == 50
    stamps = sorted(m["created_at"] for m in fake.messages)
    # Every window of one second (half-open) that starts at a message holds at most 20.
    for i, first in enumerate(stamps):
        in_window = [t for t in stamps[i:] if (t - first).total_seconds() < 1.0]
        assert len(in_window) <= 20, f"{len(in_window)} messages within 1 s from {first}"
    assert {_entry(db, f"k{i}").state for i in range(50)} == {"sent"}


def test_one_batch_with_success_temporary_and_permanent_failures(twilio_app, db, fake, clock, circuit,
                                                                 use_settings):
    use_settings(OUTBOX_SEND_WORKERS=4)
    stop = circuit.patient
    fake.error_for(stop.phone, 21610)  # replied STOP: permanent, opts the patient out
    fake.error_for("+33679000001", 20503, status=503)  # unavailable for this number: temporary
    _queue(db, key="ok-1", body="Premier", to="+33679000002")
    _queue(db, key="stop", body="Refusé", to=stop.phone, patient_id=stop.id)
    _queue(db, key="later", body="Plus tard", to="+33679000001")
    _queue(db, key="ok-2", body="Deuxième", to="+33679000003")
    _queue(db, key="ok-1-bis", body="Premier, suite", to="+33679000002")  # same patient as ok-1
    _queue(db, key="ok-3", body="Troisième", to="+33679000004")

    stats = dispatch_outbox()

    assert (stats["claimed"], stats["sent"], stats["failed"], stats["retried"], stats["lost"]) == (6, 4, 1, 1, 0)
    assert [_entry(db, k).state for k in ("ok-1", "ok-1-bis", "ok-2", "ok-3")] == ["sent"] * 4
    refused = _entry(db, "stop")
    assert (refused.state, refused.last_error_code) == ("failed", 21610)
    later = _entry(db, "later")
    assert (later.state, later.attempts, later.last_error_code) == ("pending", 1, 20503)
    assert timedelta(seconds=24) <= later.next_attempt_at - clock.now <= timedelta(seconds=30)
    db.session.refresh(stop)
    assert stop.opted_out_at == clock.now
    # Two messages to one patient leave in the order they were queued, one after the other.
    assert [m["body"] for m in fake.messages_to("+33679000002")] == ["Premier", "Premier, suite"]
    sids = {m["body"]: m["sid"] for m in fake.messages}
    linked = {m.outbox_id: m.provider_sid for m in db.session.scalars(select(Message))}
    assert linked == {_entry(db, k).id: sids[body] for k, body in
                      [("ok-1", "Premier"), ("ok-1-bis", "Premier, suite"), ("ok-2", "Deuxième"),
                       ("ok-3", "Troisième")]}


def test_send_pacer_waits_a_second_after_the_answer_of_the_send_rate_places_before():
    from app.notifications.pacing import SendPacer

    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    pacer = SendPacer(5.0, burst=5.0, monotonic=lambda: now[0], sleep=sleep)
    starts, answers = [], []
    for _ in range(23):
        ticket = pacer.acquire()
        starts.append(now[0])
        now[0] += 0.1  # the provider's round trip
        answers.append(now[0])
        pacer.done(ticket)
    assert starts[:2] == [0.0, 0.1]  # the bucket's burst: no wait while the window has room
    for i in range(len(starts) - 5):
        assert starts[i + 5] >= answers[i] + 1.0 - 1e-9
    # Any second (half-open) holds at most 5 starts and at most 5 answers.
    for times in (starts, answers):
        assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) == 5
    assert SendPacer(0, monotonic=lambda: now[0], sleep=sleep).acquire() is None  # no limit


def test_one_twilio_provider_shared_by_threads_gives_each_send_its_own_answer(twilio_app, fake):
    """One SDK client shared by threads could return one request's response to another."""
    from concurrent.futures import ThreadPoolExecutor

    provider = get_provider(twilio_app)
    try:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: (i, provider.send_sms(f"+336790100{i:02d}", f"Fil {i}", None)),
                                    range(60)))
    finally:
        provider.close()
    sid_of = {m["body"]: m["sid"] for m in fake.messages}
    assert len(sid_of) == 60
    assert all(result.sid == sid_of[f"Fil {i}"] for i, result in results)


def test_a_group_of_sends_is_recorded_in_two_statements_fenced_per_row(twilio_app, db, fake):
    from sqlalchemy import event, update

    from app.notifications.dispatcher import DispatchStats
    from app.notifications.providers import ProviderResult
    from app.notifications.status import apply_status_callback

    for i in range(5):
        _queue(db, key=f"g{i}", body=f"Groupe {i}", to=f"+336791000{i:02d}", ref=f"test:g{i}")
    provider = get_provider(twilio_app)
    dispatcher = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config))
    try:
        claims = dispatcher.claim(10)
        assert len(claims) == 5
        # g2 was re-claimed meanwhile by another dispatcher (its lease had run out): not ours to record.
        db.session.execute(update(OutboxEntry).where(OutboxEntry.id == claims[2].id)
                           .values(attempts=OutboxEntry.attempts + 1))
        db.session.commit()
        stats, statements = DispatchStats(), []

        def record(conn, cursor, statement, *args):
            statements.append(statement.lstrip().split(None, 1)[0].upper())

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            dispatcher._record_sent_group([(c, ProviderResult(f"SMgroup{n}", "queued"))
                                           for n, c in enumerate(claims[:3])], stats)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert [s for s in statements if s in ("UPDATE", "INSERT", "SELECT")] == ["UPDATE", "INSERT"]
        assert (stats.sent, stats.lost) == (2, 1)
        rows = [_entry(db, f"g{i}") for i in range(3)]
        assert [(r.state, r.provider_sid) for r in rows] == [("sent", "SMgroup0"), ("sent", "SMgroup1"),
                                                              ("sending", None)]
        linked = {m.provider_sid: (m.outbox_id, m.ref, m.from_number) for m in db.session.scalars(select(Message))}
        assert linked == {"SMgroup0": (rows[0].id, "test:g0", SENDER), "SMgroup1": (rows[1].id, "test:g1", SENDER)}

        # A status callback stored g3's SID first: the group falls back to one send at a time.
        apply_status_callback(sid="SMearly", status="delivered", channel="sms", to_number=claims[3].to_number)
        db.session.commit()
        dispatcher._record_sent_group([(claims[3], ProviderResult("SMearly", "queued")),
                                       (claims[4], ProviderResult("SMgroup4", "queued"))], stats)
    finally:
        provider.close()
    assert (stats.sent, stats.lost) == (4, 1)
    early = db.session.scalar(select(Message).where(Message.provider_sid == "SMearly"))
    assert (early.outbox_id, early.status, early.ref) == (_entry(db, "g3").id, "delivered", "test:g3")
    assert _entry(db, "g4").provider_sid == "SMgroup4" and count(db, Message) == 4


def test_batches_claimed_ahead_keep_order_and_reconcile_retried_rows_first(twilio_app, db, fake, clock,
                                                                          use_settings):
    from sqlalchemy import update

    use_settings(OUTBOX_BATCH_SIZE=2, OUTBOX_SEND_WORKERS=4)
    _queue(db, key="retried", body="Réessai", to="+33679200000")
    provider = AcceptedThenTimeout(get_provider(twilio_app))  # accepted, but the answer is lost
    try:
        assert Dispatcher(provider, DispatchSettings.from_config(twilio_app.config)).run().retried == 1
    finally:
        provider.close()
    clock.advance(seconds=31)
    recipients = ["+33679200001", "+33679200002", "+33679200001", "+33679200003", "+33679200001",
                  "+33679200004"]
    for i, to in enumerate(recipients):
        _queue(db, key=f"f{i}", body=f"Suite {i}", to=to)
    # The fresh rows come first, so the retried one arrives in a batch claimed ahead.
    db.session.execute(update(OutboxEntry).where(OutboxEntry.idempotency_key.like("f%"))
                       .values(next_attempt_at=_entry(db, "retried").next_attempt_at - timedelta(seconds=1)))
    db.session.commit()

    stats = dispatch_outbox()

    assert (stats["claimed"], stats["sent"], stats["reconciled"], stats["released"]) == (7, 6, 1, 0)
    assert [m["body"] for m in fake.messages_to("+33679200001")] == ["Suite 0", "Suite 2", "Suite 4"]
    assert sorted(m["body"] for m in fake.messages) == sorted(["Réessai"] + [f"Suite {i}" for i in range(6)])
    retried = _entry(db, "retried")  # found at the provider, not sent again
    assert retried.state == "sent" and retried.attempts == 2
    assert retried.provider_sid == fake.messages_to("+33679200000")[0]["sid"]
