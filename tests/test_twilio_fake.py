"""The Twilio fake, driven through the real twilio SDK via make_twilio_client."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.notifications.twilio_client import make_twilio_client
from tests.twilio_fake import FakeTwilio

SID = "AC" + "a1" * 16
TOKEN = "fake-auth-token-0123456789"
PATIENT = "+33612345678"
SENDER = "+33700000001"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        yield server


@pytest.fixture
def client(fake: FakeTwilio) -> Iterator[Client]:
    c = make_twilio_client(SID, TOKEN, api_base_url=fake.base_url, timeout=2.0)
    yield c
    c.http_client.close()


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


class Receiver:
    """Tiny webhook endpoint recording form POSTs with their Twilio signature."""

    def __init__(self) -> None:
        self.hits: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Handler)
        self._server.daemon_threads = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self.url = f"http://127.0.0.1:{self._server.server_port}/twilio/status"

    def _app(self, environ: Dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        with self._lock:
            self.hits.append(
                {
                    "path": req.path,
                    "form": req.form.to_dict(),
                    "signature": req.headers.get("X-Twilio-Signature"),
                }
            )
        return Response("", status=204)(environ, start_response)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_send_message_is_recorded_and_fetchable(fake: FakeTwilio, client: Client) -> None:
    msg = client.messages.create(to=PATIENT, from_=SENDER, body="Bonjour, votre bilan hebdomadaire")

    assert re.fullmatch(r"SM[0-9a-f]{32}", msg.sid)
    assert msg.status == "queued"
    assert msg.to == PATIENT and msg.from_ == SENDER and msg.account_sid == SID
    assert msg.num_segments == "1"
    assert msg.date_created is not None and msg.date_created.tzinfo is not None

    [rec] = fake.messages
    assert rec["sid"] == msg.sid
    assert rec["to"] == PATIENT and rec["from_"] == SENDER
    assert rec["body"] == "Bonjour, votre bilan hebdomadaire"
    assert rec["messaging_service_sid"] is None and rec["status_callback"] is None
    assert fake.messages_to(PATIENT) == [rec]
    assert fake.messages_to("+33699999999") == []

    fetched = client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.body == rec["body"]
    assert fake.requests_count == 2

    fake.reset()
    assert fake.messages == [] and fake.requests_count == 0


def test_messaging_service_and_status_callback_fields(fake: FakeTwilio, client: Client) -> None:
    mss = "MG" + "0" * 32
    client.messages.create(
        to=PATIENT, messaging_service_sid=mss, body="x" * 161, status_callback="https://app.example/cb"
    )
    [rec] = fake.messages
    assert rec["messaging_service_sid"] == mss and rec["from_"] is None
    assert rec["status_callback"] == "https://app.example/cb"
    assert rec["num_segments"] == 2


def test_wrong_auth_token_is_401(fake: FakeTwilio) -> None:
    bad = make_twilio_client(SID, "wrong-token", api_base_url=fake.base_url, timeout=2.0)
    try:
        with pytest.raises(TwilioRestException) as info:
            bad.messages.create(to=PATIENT, from_=SENDER, body="hi")
    finally:
        bad.http_client.close()
    assert info.value.status == 401
    assert info.value.code == 20003
    assert fake.messages == []


def test_missing_body_is_rejected(fake: FakeTwilio, client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=PATIENT, from_=SENDER)
    assert info.value.status == 400 and info.value.code == 21602
    assert fake.messages == []


def test_fail_next_then_success(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(1, status=500)
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=PATIENT, from_=SENDER, body="hi")
    assert info.value.status == 500
    assert fake.messages == []

    msg = client.messages.create(to=PATIENT, from_=SENDER, body="hi")
    assert [m["sid"] for m in fake.messages] == [msg.sid]


def test_hang_next_times_out_and_records_nothing(fake: FakeTwilio) -> None:
    quick = make_twilio_client(SID, TOKEN, api_base_url=fake.base_url, timeout=0.5)
    try:
        fake.hang_next(1, seconds=3.0)
        started = time.monotonic()
        # The SDK does not wrap transport errors: requests' ReadTimeout propagates.
        with pytest.raises(requests.exceptions.ReadTimeout):
            quick.messages.create(to=PATIENT, from_=SENDER, body="hi")
        assert time.monotonic() - started < 2.0
        assert fake.messages == []

        msg = quick.messages.create(to=PATIENT, from_=SENDER, body="hi again")
        assert [m["sid"] for m in fake.messages] == [msg.sid]
    finally:
        quick.http_client.close()


def test_slow_for_number_accepts_at_once_but_answers_late(fake: FakeTwilio) -> None:
    quick = make_twilio_client(SID, TOKEN, api_base_url=fake.base_url, timeout=0.5)
    try:
        fake.slow_for(PATIENT, 3.0)
        fake.slow_for("+33611111111", 3.0, accepted=False)
        for number, recorded in ((PATIENT, 1), ("+33611111111", 0)):
            started = time.monotonic()
            with pytest.raises(requests.exceptions.ReadTimeout):
                quick.messages.create(to=number, from_=SENDER, body="hi")
            assert time.monotonic() - started < 2.0
            assert len(fake.messages_to(number)) == recorded  # listed although never answered
        msg = quick.messages.create(to=PATIENT, from_=SENDER, body="hi again")  # one request only
        assert [m["sid"] for m in fake.messages_to(PATIENT)][-1] == msg.sid
    finally:
        quick.http_client.close()


def test_error_for_number(fake: FakeTwilio, client: Client) -> None:
    fake.error_for(PATIENT, 21610)
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=PATIENT, from_=SENDER, body="hi")
    assert info.value.code == 21610 and info.value.status == 400
    assert "unsubscribed" in info.value.msg

    other = client.messages.create(to="+33698765432", from_=SENDER, body="hi")
    assert [m["sid"] for m in fake.messages] == [other.sid]

    fake.clear_faults()
    client.messages.create(to=PATIENT, from_=SENDER, body="hi")
    assert len(fake.messages_to(PATIENT)) == 1


def test_create_and_fetch_call(fake: FakeTwilio, client: Client) -> None:
    call = client.calls.create(
        to=PATIENT, from_=SENDER, url="https://app.example/voice", machine_detection="Enable"
    )
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued" and call.to == PATIENT

    [rec] = fake.calls
    assert rec["sid"] == call.sid and rec["from_"] == SENDER
    assert rec["url"] == "https://app.example/voice" and rec["machine_detection"] == "Enable"
    assert fake.messages == []

    assert client.calls(call.sid).fetch().sid == call.sid
    with pytest.raises(TwilioRestException) as info:
        client.messages(call.sid).fetch()
    assert info.value.status == 404


def test_auto_status_callbacks_are_signed(receiver: Receiver) -> None:
    with FakeTwilio(SID, TOKEN, auto_callbacks=True, callback_delay=0.0) as fake:
        c = make_twilio_client(SID, TOKEN, api_base_url=fake.base_url, timeout=2.0)
        try:
            msg = c.messages.create(to=PATIENT, from_=SENDER, body="hi", status_callback=receiver.url)
        finally:
            c.http_client.close()
        assert fake.wait_for_callbacks(timeout=5.0)
        assert fake.messages[0]["status"] == "delivered"

    assert [h["form"]["MessageStatus"] for h in receiver.hits] == ["sent", "delivered"]
    validator = RequestValidator(TOKEN)
    impostor = RequestValidator("not-the-token")
    for hit in receiver.hits:
        form = hit["form"]
        assert hit["path"] == "/twilio/status"
        assert form["MessageSid"] == msg.sid and form["AccountSid"] == SID
        assert form["To"] == PATIENT and form["From"] == SENDER
        assert "ErrorCode" not in form
        assert validator.validate(receiver.url, form, hit["signature"])
        assert not impostor.validate(receiver.url, form, hit["signature"])
        assert not validator.validate(receiver.url, dict(form, MessageStatus="failed"), hit["signature"])


def test_manual_status_callback_and_inbound_webhook(
    fake: FakeTwilio, client: Client, receiver: Receiver
) -> None:
    msg = client.messages.create(to=PATIENT, from_=SENDER, body="hi", status_callback=receiver.url)
    assert receiver.hits == []  # auto_callbacks is off by default

    status, _ = fake.send_status_callback(msg.sid, "undelivered", error_code=30003)
    assert status == 204
    [hit] = receiver.hits
    assert hit["form"]["MessageStatus"] == "undelivered" and hit["form"]["ErrorCode"] == "30003"
    assert RequestValidator(TOKEN).validate(receiver.url, hit["form"], hit["signature"])
    assert client.messages(msg.sid).fetch().status == "undelivered"

    inbound = {"From": PATIENT, "To": SENDER, "Body": "STOP", "MessageSid": "SM" + "f" * 32, "AccountSid": SID}
    status, _ = fake.post_signed(receiver.url, inbound)
    assert status == 204
    assert receiver.hits[-1]["form"] == inbound
    assert RequestValidator(TOKEN).validate(receiver.url, inbound, receiver.hits[-1]["signature"])


def test_url_rewriting_is_scoped_to_twilio_hosts() -> None:
    c = make_twilio_client(SID, TOKEN, api_base_url="http://127.0.0.1:9/prefix/", timeout=1.0)
    try:
        rewrite = c.http_client.rewrite_url
        assert (
            rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5")
            == "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"
        )
        assert rewrite("https://messaging.twilio.com/v1/Services") == "http://127.0.0.1:9/prefix/v1/Services"
        assert rewrite("https://example.com/x") == "https://example.com/x"
        assert rewrite("https://nottwilio.com/x") == "https://nottwilio.com/x"
    finally:
        c.http_client.close()

    plain = make_twilio_client(SID, TOKEN)
    try:
        assert plain.http_client.rewrite_url("https://api.twilio.com/x") == "https://api.twilio.com/x"
        assert plain.http_client.timeout == 10.0
    finally:
        plain.http_client.close()
