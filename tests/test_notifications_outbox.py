"""Writing to the outbox: same transaction as the cause, idempotent, validated."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.notifications.dispatcher import Dispatcher, DispatchSettings
from app.notifications.models import Message, OutboxEntry
from app.notifications.outbox import (
    dead_entries,
    enqueue_call,
    enqueue_sms,
    entries_for_ref,
    requeue_dead,
    state_counts,
)
from app.notifications.providers import get_provider
from app.notifications.tasks import dispatch_outbox
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC,
    STATUS_URL,
    count,
    fake_fixture,
    twilio_app_fixture,
    use_settings_fixture,
)

PHONE = "+33611223344"


def test_rolled_back_enqueue_sends_nothing(twilio_app, db, fake):
    enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-rollback", purpose="test")
    db.session.rollback()

    stats = dispatch_outbox()

    assert stats["claimed"] == 0 and fake.messages == []
    assert count(db, OutboxEntry) == 0


def test_same_key_twice_is_one_row_and_one_message(twilio_app, db, fake):
    first = enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-once", purpose="test", ref="r:1")
    again = enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-once", purpose="test", ref="r:1")
    assert again is first
    db.session.commit()
    # In a later transaction too, even with another text: the key decides.
    later = enqueue_sms(to=PHONE, body="Autre texte", idempotency_key="k-once", purpose="test")
    assert later.id == first.id and later.body == "Bonjour"
    db.session.commit()

    dispatch_outbox()
    dispatch_outbox()

    assert [m["body"] for m in fake.messages] == ["Bonjour"]
    assert count(db, OutboxEntry) == 1
    [entry] = entries_for_ref("r:1")
    assert entry.state == "sent" and entry.provider_sid == fake.messages[0]["sid"]
    assert entry.attempts == 1 and entry.sent_at is not None


def test_the_key_is_never_part_of_what_the_patient_gets(twilio_app, db, fake):
    enqueue_sms(to=PHONE, body="Votre questionnaire", idempotency_key="checkin:77:secret-key",
                purpose="checkin", ref="checkin:77")
    db.session.commit()
    dispatch_outbox()
    [sent] = fake.messages
    assert "secret-key" not in repr(sent)


@pytest.mark.parametrize("kwargs, message", [
    ({"to": "0611223344"}, "E.164"),
    ({"to": "+33 6 11 22 33 44"}, "E.164"),
    ({"body": ""}, "needs a body"),
    ({"body": "a" * 307}, "3 GSM-7 segments"),
    ({"body": "ç" * 135}, "3 UCS-2 segments"),
    ({"idempotency_key": ""}, "idempotency key"),
    ({"idempotency_key": "k" * 201}, "idempotency key"),
])
def test_invalid_sms_is_refused(db, kwargs, message):
    args = {"to": PHONE, "body": "Bonjour", "idempotency_key": "k", "purpose": "test", **kwargs}
    with pytest.raises(ValueError, match=message):
        enqueue_sms(**args)
    assert count(db, OutboxEntry) == 0


def test_two_segments_are_accepted(db):
    entry = enqueue_sms(to=PHONE, body="a" * 306, idempotency_key="k-306", purpose="test")
    assert entry.id is not None and entry.state == "pending"


def test_call_is_queued_and_started_with_public_urls(twilio_app, db, fake):
    entry = enqueue_call(to=PHONE, idempotency_key="call-1", purpose="checkin_call",
                         twiml_path="/voice/checkin/5", ref="checkin:5")
    assert enqueue_call(to=PHONE, idempotency_key="call-1", purpose="checkin_call",
                        twiml_path="/voice/checkin/5") is entry
    with pytest.raises(ValueError, match="absolute path"):
        enqueue_call(to=PHONE, idempotency_key="call-2", purpose="x", twiml_path="voice/1")
    db.session.commit()

    stats = dispatch_outbox()

    assert stats["sent"] == 1
    [call] = fake.calls
    assert call["url"] == PUBLIC + "/voice/checkin/5"
    assert call["status_callback"] == STATUS_URL
    message = db.session.scalar(select(Message).where(Message.outbox_id == entry.id))
    assert message.channel == "voice" and message.provider_sid == call["sid"]
    assert message.ref == "checkin:5" and message.status == "queued"


def test_sms_carries_the_status_callback_and_ref(twilio_app, db, fake, circuit):
    patient = circuit.patient
    entry = enqueue_sms(to=patient.phone, body="Bonjour", idempotency_key="k-ref", purpose="test",
                        patient_id=patient.id, ref="checkin:9:item:fever")
    db.session.commit()
    dispatch_outbox()
    [sent] = fake.messages
    assert sent["status_callback"] == STATUS_URL and sent["to"] == patient.phone
    message = db.session.scalar(select(Message).where(Message.provider_sid == sent["sid"]))
    assert (message.direction, message.outbox_id, message.patient_id, message.ref) == (
        "out", entry.id, patient.id, "checkin:9:item:fever")
    assert message.body == "Bonjour" and message.from_number == "+33700000099"


def test_messaging_service_replaces_the_from_number(twilio_app, db, fake, use_settings):
    use_settings(TWILIO_FROM_NUMBER=None, TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32)
    enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-mss", purpose="test")
    db.session.commit()
    dispatch_outbox()
    [sent] = fake.messages
    assert sent["messaging_service_sid"] == "MG" + "1" * 32 and sent["from_"] is None


def test_console_provider_prints_and_delivers(app, db, use_settings, capsys):
    use_settings(SMS_PROVIDER="console", TWILIO_AUTH_TOKEN=None, OUTBOX_RATE_PER_SECOND=0.0,
                 OUTBOX_TIME_BUDGET_SECONDS=0.0)
    enqueue_sms(to=PHONE, body="Bonjour du mode démo", idempotency_key="k-console", purpose="test")
    db.session.commit()
    stats = dispatch_outbox()
    assert stats["sent"] == 1
    assert f"[SMS to {PHONE}] Bonjour du mode démo" in capsys.readouterr().out
    message = db.session.scalar(select(Message))
    assert message.provider_sid.startswith("SMconsole") and len(message.provider_sid) == 34
    assert message.status == "delivered"


def test_state_counts_dead_list_and_requeue(db):
    entry = enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-dead", purpose="test")
    enqueue_sms(to=PHONE, body="Bonjour 2", idempotency_key="k-pending", purpose="test")
    entry.state, entry.attempts = "dead", 8
    db.session.commit()
    assert state_counts() == {"pending": 1, "sending": 0, "sent": 0, "failed": 0, "dead": 1}
    assert dead_entries() == [entry]
    requeue_dead(entry)
    assert entry.state == "pending" and entry.attempts == 0
    with pytest.raises(ValueError):
        requeue_dead(entry)


def test_uncommitted_rows_are_invisible_to_a_dispatcher(twilio_app, db, fake):
    """A dispatcher in another session never sees a row before its transaction commits."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite allows one writer: the dispatcher would wait for the lock instead")
    enqueue_sms(to=PHONE, body="Pas encore", idempotency_key="k-uncommitted", purpose="test")
    db.session.flush()  # written, not committed
    result = {}

    def other_process():
        with twilio_app.app_context():
            provider = get_provider(twilio_app)
            try:
                result.update(Dispatcher(provider, DispatchSettings.from_config(twilio_app.config))
                              .run().as_dict())
            finally:
                provider.close()
                from app.extensions import db as _db
                _db.session.remove()

    thread = threading.Thread(target=other_process)
    thread.start()
    thread.join(30)
    assert result["claimed"] == 0 and fake.messages == []
    db.session.commit()
    assert dispatch_outbox()["sent"] == 1 and len(fake.messages) == 1


def test_cli_dispatch_and_status(twilio_app, db, fake):
    enqueue_sms(to=PHONE, body="Bonjour", idempotency_key="k-cli-1", purpose="test")
    enqueue_sms(to=PHONE, body="Bonsoir", idempotency_key="k-cli-2", purpose="test")
    db.session.commit()
    runner = twilio_app.test_cli_runner()

    before = runner.invoke(args=["outbox", "status"])
    assert before.exit_code == 0 and "pending  2" in before.output
    assert "oldest due row waiting for" in before.output

    result = runner.invoke(args=["outbox", "dispatch", "--batch-size", "1", "--time-budget", "0"])
    assert result.exit_code == 0, result.output
    assert "claimed=2 sent=2" in result.output and len(fake.messages) == 2

    after = runner.invoke(args=["outbox", "status"])
    assert "sent     2" in after.output and "pending  0" in after.output
    assert "oldest due" not in after.output


def test_many_sms_in_one_statement_skip_known_keys_and_refuse_bad_rows(db):
    from app.notifications.outbox import enqueue_sms_rows

    enqueue_sms(to="+33611223344", body="Premier", idempotency_key="many:0", purpose="t")
    rows = [dict(to="+33611223344", body="Autre texte", idempotency_key="many:0", purpose="t"),
            dict(to="+33611223344", body="Deux", idempotency_key="many:1", purpose="t", patient_id=None, ref="r:1"),
            dict(to="+33699887766", body="Trois", idempotency_key="many:2", purpose="t")]
    assert enqueue_sms_rows(rows) == 2
    db.session.commit()
    stored = db.session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
    assert [(e.idempotency_key, e.body, e.state) for e in stored] == [
        ("many:0", "Premier", "pending"), ("many:1", "Deux", "pending"), ("many:2", "Trois", "pending")]
    assert stored[1].ref == "r:1"

    with pytest.raises(ValueError):
        enqueue_sms_rows([dict(to="+33611223344", body="ok", idempotency_key="many:3", purpose="t"),
                          dict(to="Hospital", body="ok", idempotency_key="many:4", purpose="t")])
    with pytest.raises(ValueError):
        enqueue_sms_rows([dict(to="+33611223344", body="é€" * 200, idempotency_key="many:5", purpose="t")])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxEntry)) == 3
    assert enqueue_sms_rows([]) == 0
