"""Twilio webhooks: signatures, inbound dedupe, status callbacks that never move backwards."""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.notifications.dispatcher import STATUS_CALLBACK_PATH
from app.notifications.inbound import (
    MAX_BODY,
    clean_text,
    queued_count,
    receive_sms,
    register_sms_handler,
    tag_message,
)
from app.notifications.models import Message, OutboxEntry
from app.notifications.outbox import enqueue_sms
from app.notifications.signals import message_status_changed
from app.notifications.status import record_outbound
from app.notifications.tasks import dispatch_outbox, process_inbound
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC,
    SENDER,
    SID,
    count,
    fake_fixture,
    signed_post,
    twilio_app_fixture,
    use_settings_fixture,
)

SMS_PATH = "/webhooks/twilio/sms"
_sids = itertools.count(1)


def _sid() -> str:
    return f"SM{next(_sids):032x}"


class Handler:
    def __init__(self, replies=("Merci, réponse reçue.",), error: Exception | None = None):
        self.calls: list[tuple[str, str, str, int]] = []
        self.replies, self.error = list(replies), error

    def __call__(self, from_number, to_number, body, message_id):
        self.calls.append((from_number, to_number, body, message_id))
        if self.error:
            raise self.error
        return self.replies


@pytest.fixture
def handler():
    handler = Handler()
    previous = register_sms_handler(handler)
    yield handler
    register_sms_handler(previous)


def _inbound(body="OUI", sid=None, from_="+33611223344"):
    return {"From": from_, "To": SENDER, "Body": body, "MessageSid": sid or _sid(), "AccountSid": SID,
            "NumMedia": "0"}


def _twiml_messages(response) -> list[str]:
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def test_routes_and_status_callback_path(app):
    rules = {r.rule: r.endpoint for r in app.url_map.iter_rules()}
    assert rules[SMS_PATH] == "webhooks.inbound_sms"
    assert rules[STATUS_CALLBACK_PATH] == "webhooks.status_callback"


def _outbox_replies(db) -> list[OutboxEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxEntry).where(OutboxEntry.purpose == "sms_reply")
                                   .order_by(OutboxEntry.id)))


def test_signed_inbound_sms_is_queued_then_read_and_answered(twilio_app, client, db, fake, handler, circuit):
    patient = circuit.patient
    params = _inbound("deux", from_=patient.phone)
    response = signed_post(client, fake, SMS_PATH, params)  # no CSRF token: exempt

    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert _twiml_messages(response) == []  # the reply leaves through the outbox
    inbound = db.session.scalar(select(Message).where(Message.provider_sid == params["MessageSid"]))
    assert (inbound.direction, inbound.body, inbound.status) == ("in", "deux", "queued")
    assert handler.calls == [] and queued_count() == 1

    stats = process_inbound()
    assert (stats["processed"], stats["replies"], stats["handler_errors"]) == (1, 1, 0)
    inbound = _message(db, params["MessageSid"])
    assert (inbound.status, inbound.patient_id) == ("received", patient.id)
    assert handler.calls == [(patient.phone, SENDER, "deux", inbound.id)]
    [reply] = _outbox_replies(db)
    assert (reply.to_number, reply.body, reply.patient_id, reply.state) == (
        patient.phone, "Merci, réponse reçue.", patient.id, "pending")
    assert reply.idempotency_key == f"sms-reply:{inbound.id}:0"

    dispatch_outbox()
    assert [(m["to"], m["body"]) for m in fake.messages] == [(patient.phone, "Merci, réponse reçue.")]
    assert process_inbound()["processed"] == 0 and queued_count() == 0  # read once


def test_duplicate_message_sid_is_stored_once_and_answered_once(twilio_app, client, db, fake, handler):
    params = _inbound("NON")
    first = signed_post(client, fake, SMS_PATH, params)
    second = signed_post(client, fake, SMS_PATH, params)
    process_inbound()
    third = signed_post(client, fake, SMS_PATH, params)  # a retry after it was read
    process_inbound()

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert count(db, Message, Message.direction == "in") == 1
    assert len(_outbox_replies(db)) == 1
    assert len(handler.calls) == 1


def test_one_phone_is_read_in_arrival_order_across_batches(twilio_app, client, db, fake, handler):
    bodies = [f"réponse {n}" for n in range(7)]
    for body in bodies:
        signed_post(client, fake, SMS_PATH, _inbound(body, from_="+33611223344"))
        signed_post(client, fake, SMS_PATH, _inbound("autre", from_="+33699887766"))
    stats = process_inbound(batch_size=3)
    assert stats["processed"] == 14 and stats["batches"] == 5
    assert [c[2] for c in handler.calls if c[0] == "+33611223344"] == bodies


def test_a_run_that_dies_before_its_commit_leaves_everything_to_the_next(twilio_app, client, db, fake, handler,
                                                                          monkeypatch):
    for body in ("1", "2", "3"):
        signed_post(client, fake, SMS_PATH, _inbound(body))
    import app.notifications.inbound as inbound_module

    real = inbound_module._reply_rows
    seen = []

    def dies_on_the_third(inbound, replies):
        seen.append(inbound.body)
        if len(seen) == 3:
            raise KeyboardInterrupt  # as a kill would, between two messages of one batch
        return real(inbound, replies)

    monkeypatch.setattr(inbound_module, "_reply_rows", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        process_inbound()
    db.session.rollback()
    assert queued_count() == 3 and _outbox_replies(db) == []

    monkeypatch.setattr(inbound_module, "_reply_rows", real)
    assert process_inbound()["processed"] == 3
    assert [r.body for r in _outbox_replies(db)] == ["Merci, réponse reçue."] * 3
    assert len({r.idempotency_key for r in _outbox_replies(db)}) == 3


def test_no_reply_to_a_sender_that_is_not_a_phone_number(twilio_app, client, db, fake, handler):
    signed_post(client, fake, SMS_PATH, _inbound("OUI", from_="Hospital"))
    stats = process_inbound()
    assert (stats["processed"], stats["replies"]) == (1, 0)
    assert handler.calls[0][0] == "Hospital" and _outbox_replies(db) == []


@pytest.mark.parametrize("case", ["missing", "garbage", "other_token", "other_url", "tampered"])
def test_bad_signature_is_403_and_stores_nothing(twilio_app, client, db, fake, handler, case):
    params = _inbound("STOP")
    if case == "missing":
        response = client.post(SMS_PATH, data=params)
    elif case == "garbage":
        response = signed_post(client, fake, SMS_PATH, params, signature="not-a-signature")
    elif case == "other_token":
        from twilio.request_validator import RequestValidator

        forged = RequestValidator("another-token").compute_signature(PUBLIC + SMS_PATH, params)
        response = signed_post(client, fake, SMS_PATH, params, signature=forged)
    elif case == "other_url":  # signed for the URL this process sees, not the public one
        response = signed_post(client, fake, SMS_PATH, params, url="http://localhost" + SMS_PATH)
    else:
        signature = fake.sign(PUBLIC + SMS_PATH, params)
        response = signed_post(client, fake, SMS_PATH, dict(params, Body="START"), signature=signature)
    assert response.status_code == 403
    assert count(db, Message) == 0 and handler.calls == []


def test_query_string_is_part_of_the_signed_url(twilio_app, client, db, fake, handler):
    params = _inbound("OUI")
    path = SMS_PATH + "?site=LYN"
    response = signed_post(client, fake, path, params, url=PUBLIC + path)
    assert response.status_code == 200
    wrong = signed_post(client, fake, path, _inbound("OUI"), url=PUBLIC + SMS_PATH)
    assert wrong.status_code == 403


def test_no_auth_token_refuses_everything(app, client, db, fake, handler, use_settings):
    use_settings(SMS_PROVIDER="console", TWILIO_AUTH_TOKEN=None, PUBLIC_BASE_URL=PUBLIC)
    response = signed_post(client, fake, SMS_PATH, _inbound("OUI"))
    assert response.status_code == 403 and count(db, Message) == 0


def test_failing_handler_keeps_the_message_and_answers_nothing(twilio_app, client, db, fake):
    failing = Handler(error=RuntimeError("bug"))
    previous = register_sms_handler(failing)
    try:
        response = signed_post(client, fake, SMS_PATH, _inbound("OUI"))
        signed_post(client, fake, SMS_PATH, _inbound("NON", from_="+33699887766"))
        stats = process_inbound()
    finally:
        register_sms_handler(previous)
    assert response.status_code == 200 and _twiml_messages(response) == []
    assert (stats["processed"], stats["handler_errors"], stats["replies"]) == (2, 2, 0)
    messages = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert [(m.status, m.body) for m in messages] == [("handler_error", "OUI"), ("handler_error", "NON")]
    assert len(failing.calls) == 2 and _outbox_replies(db) == []


def test_receive_sms_directly_and_tag(db, handler):
    replies = receive_sms(from_number="+33611223344", to_number=SENDER, body="2", provider_sid=None)
    assert replies == ["Merci, réponse reçue."]
    message_id = handler.calls[0][3]
    tag_message(message_id, ref="checkin:3:item:doses")
    db.session.commit()
    assert db.session.get(Message, message_id).ref == "checkin:3:item:doses"
    # Without a provider SID there is nothing to dedupe on: a second one is a new message.
    receive_sms(from_number="+33611223344", to_number=SENDER, body="2", provider_sid=None)
    assert count(db, Message, Message.direction == "in") == 2


def test_garbage_is_stored_bounded(db, handler):
    body = "\x00" + "é" * 10_000 + "\ud800"
    receive_sms(from_number="\x00" * 100, to_number=SENDER, body=body, provider_sid="SMgarbage")
    db.session.commit()
    message = db.session.scalar(select(Message).where(Message.provider_sid == "SMgarbage"))
    assert message.body == "é" * MAX_BODY and message.from_number == ""
    assert clean_text("a\ud800b", 10) == "a?b" and clean_text(None, 5) == ""


# ---------------------------------------------------------------- status callbacks

@pytest.fixture
def sent_sms(twilio_app, db, fake):
    enqueue_sms(to="+33611223344", body="Bonjour", idempotency_key="k-status", purpose="test",
                ref="checkin:1")
    db.session.commit()
    dispatch_outbox()
    return fake.messages[0]["sid"]


@pytest.fixture
def signals_seen():
    seen: list[tuple[str | None, str]] = []

    def listener(message):
        seen.append((message.ref, message.status))

    message_status_changed.connect(listener)
    yield seen
    message_status_changed.disconnect(listener)


def _status(sid: str, status: str, **extra) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": SID, "To": "+33611223344", "From": SENDER, **extra}


def _message(db, sid: str) -> Message:
    db.session.rollback()
    return db.session.scalar(select(Message).where(Message.provider_sid == sid))


def test_status_callbacks_never_move_backwards(client, db, fake, sent_sms, signals_seen):
    def post(params):
        return signed_post(client, fake, STATUS_CALLBACK_PATH, params)

    assert post(_status(sent_sms, "delivered")).status_code == 204
    delivered = _message(db, sent_sms)
    assert delivered.status == "delivered"
    stamped = delivered.status_updated_at

    assert post(_status(sent_sms, "sent")).status_code == 204  # late, out of order
    assert post(_status(sent_sms, "delivered")).status_code == 204  # duplicate
    assert post(_status(sent_sms, "undelivered", ErrorCode="30003")).status_code == 204  # after final
    message = _message(db, sent_sms)
    assert (message.status, message.error_code, message.status_updated_at) == ("delivered", None, stamped)
    assert signals_seen == [("checkin:1", "delivered")]
    assert count(db, Message) == 1


def test_status_moves_forward_step_by_step_with_error_code(client, db, fake, sent_sms, signals_seen):
    for status in ("sending", "sent", "undelivered"):
        extra = {"ErrorCode": "30005"} if status == "undelivered" else {}
        signed_post(client, fake, STATUS_CALLBACK_PATH, _status(sent_sms, status, **extra))
    message = _message(db, sent_sms)
    assert (message.status, message.error_code) == ("undelivered", 30005)
    assert signals_seen == [("checkin:1", "sending"), ("checkin:1", "sent"), ("checkin:1", "undelivered")]


def test_unsigned_status_callback_changes_nothing(client, db, fake, sent_sms):
    response = client.post(STATUS_CALLBACK_PATH, data=_status(sent_sms, "failed"))
    assert response.status_code == 403 and _message(db, sent_sms).status == "queued"


def test_callback_before_the_dispatcher_recorded_its_send(twilio_app, client, db, fake, signals_seen):
    sid = _sid()
    signed_post(client, fake, STATUS_CALLBACK_PATH, _status(sid, "sent"))
    early = _message(db, sid)
    assert early.status == "sent" and early.outbox_id is None and signals_seen == []

    entry = enqueue_sms(to="+33611223344", body="Bonjour", idempotency_key="k-early", purpose="t",
                        ref="checkin:2")
    db.session.flush()
    record_outbound(sid=sid, status="queued", channel="sms", body="Bonjour", to_number="+33611223344",
                    from_number=SENDER, patient_id=None, outbox_id=entry.id, ref="checkin:2")
    db.session.commit()
    merged = _message(db, sid)
    assert (merged.status, merged.outbox_id, merged.body) == ("sent", entry.id, "Bonjour")
    assert count(db, Message) == 1
    assert signals_seen == [("checkin:2", "sent")]  # announced once it has its ref


def test_call_status_callbacks(client, db, fake, twilio_app):
    sid = "CA" + "7" * 32

    def post(status):
        params = {"CallSid": sid, "CallStatus": status, "AccountSid": SID, "To": "+33611223344",
                  "From": SENDER, "Direction": "outbound-api"}
        return signed_post(client, fake, STATUS_CALLBACK_PATH, params)

    for status in ("ringing", "completed", "in-progress", "ringing"):
        assert post(status).status_code == 204
    message = _message(db, sid)
    assert (message.channel, message.status) == ("voice", "completed")


def test_unknown_status_is_ignored(client, db, fake, sent_sms):
    signed_post(client, fake, STATUS_CALLBACK_PATH, _status(sent_sms, "teleported"))
    assert _message(db, sent_sms).status == "queued"


# ---------------------------------------------------------------- property

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
_huge = st.builds(lambda chunk, n: chunk * n, st.text(min_size=1, max_size=8), st.integers(200, 1250))  # up to 10k chars


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(_text, _huge))
def test_any_body_is_stored_and_never_a_500(twilio_app, client, db, fake, handler, body):
    params = _inbound(body)
    response = signed_post(client, fake, SMS_PATH, params)
    assert response.status_code == 200, response.status_code
    stored = _message(db, params["MessageSid"])
    assert stored is not None and stored.direction == "in"
    assert stored.body == clean_text(body, MAX_BODY)
    assert process_inbound()["processed"] == 1
    assert _message(db, params["MessageSid"]).status == "received"


# ---------------------------------------------------------------- a queue nobody reads

def test_triage_page_warns_when_nobody_reads_the_queue(twilio_app, client, db, fake, handler, circuit, login):
    from datetime import timedelta

    from app.core.time import set_clock, utcnow

    nurse = login(circuit.nurse)
    signed_post(client, fake, SMS_PATH, _inbound("39,7", from_=circuit.patient.phone))
    assert 'id="unread-inbound"' not in nurse.get("/triage").get_data(as_text=True)  # just arrived

    set_clock(utcnow() + timedelta(minutes=3))  # no process-inbound run for three minutes
    try:
        html = nurse.get("/triage").get_data(as_text=True)
        banner = html.split('id="unread-inbound"')[1].split("</div>")[0]
        assert ": 1," in banner and "39,7" not in banner  # a count, never the text
        assert circuit.patient.last_name not in banner
        process_inbound()
        assert 'id="unread-inbound"' not in nurse.get("/triage").get_data(as_text=True)
    finally:
        set_clock(None)
