"""A local, Twilio-compatible HTTP server for tests.

``FakeTwilio`` answers the subset of Twilio's 2010-04-01 REST API used by the
app (create/fetch Messages and Calls) closely enough for the real ``twilio``
SDK to parse its answers, records what it accepted, can inject faults, and can
send signed status callbacks.  Error codes follow Twilio's documented ones
where they exist; wording and field coverage are approximations.

Lists (``GET Messages.json`` / ``Calls.json``) return records newest first, paged
with ``PageSize`` and an opaque ``PageToken`` (anchored on the last record shown,
so records added meanwhile never shift a page).  Messages filter on ``To``,
``From`` and ``DateSent`` / ``DateSent<`` / ``DateSent>`` (a message not yet sent
has no DateSent and never matches a DateSent filter, as on Twilio); calls filter
on ``To``, ``From`` and ``Status``.

Fault handling order for a create request: authentication (401), then the
queued ``fail_next``/``hang_next`` faults (FIFO, one per create request), then
a ``slow_for`` fault of the recipient (one request each), then parameter
validation (400), then ``error_for`` numbers, then acceptance.
"""

from __future__ import annotations

import collections
import json
import math
import threading
import time
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["FakeTwilio", "TWILIO_ERROR_MESSAGES"]

API_VERSION = "2010-04-01"

#: Default messages for the Twilio error codes tests commonly inject.
TWILIO_ERROR_MESSAGES: Dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21201: "No 'To' number is specified",
    21213: "No 'From' number is specified",
    21205: "Url or Twiml parameter is required.",
}

# GSM 03.38 basic character set (1 septet each) and extension table (2 septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def _num_segments(body: str) -> int:
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)  # UCS-2 code units
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _date_sent(record: Dict[str, Any]) -> Optional[datetime]:
    sent = record["status"] in ("sent", "delivered", "undelivered", "read")
    return record["updated_at"] if sent else None


def _date_sent_check(value: str, op: str) -> Any:
    """A DateSent filter: a ``YYYY-MM-DD`` day, or an ISO 8601 UTC instant."""
    if "T" in value:
        instant = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

        def project(d: datetime) -> Any:
            return d.replace(microsecond=0)
    else:
        instant = datetime.strptime(value, "%Y-%m-%d").date()  # type: ignore[assignment]

        def project(d: datetime) -> Any:
            return d.date()

    def check(record: Dict[str, Any]) -> bool:
        sent = _date_sent(record)
        if sent is None:
            return False
        value_ = project(sent)
        if op == "eq":
            return value_ == instant
        return value_ <= instant if op == "le" else value_ >= instant

    return check


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc2822(dt: Optional[datetime]) -> Optional[str]:
    return format_datetime(dt) if dt is not None else None


def _error_body(code: int, status: int, message: Optional[str] = None) -> Dict[str, Any]:
    return {
        "code": code,
        "message": message or TWILIO_ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so no handler thread lingers on an
    # idle keep-alive socket and server_close() can join every handler.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # noqa: D102
        pass


class FakeTwilio:
    """Twilio REST API look-alike bound to ``127.0.0.1`` on a free port.

    Usage::

        with FakeTwilio("AC" + "0" * 32, "token") as fake:
            client = make_twilio_client(sid, "token", api_base_url=fake.base_url)
            ...
            assert fake.messages_to("+33600000000")

    Records (snapshots, safe to read from any thread):
      ``messages`` -- dicts: sid, to, from_, body, messaging_service_sid,
      status_callback, status, num_segments, created_at, updated_at.
      ``calls`` -- dicts: sid, to, from_, url, twiml, status_callback,
      machine_detection, status, created_at, updated_at.
      ``callbacks`` -- every callback/webhook POST it made: dicts with url,
      params, signature, status_code (None on transport error), error.
      ``requests_count`` -- HTTP requests received by the API (any route).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        auto_callbacks: bool = False,
        callback_delay: float = 0.02,
        callback_timeout: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.auto_callbacks = auto_callbacks
        self.callback_delay = callback_delay
        self.callback_timeout = callback_timeout
        self._host = host
        self._port = port
        self._validator = RequestValidator(auth_token)

        self._lock = threading.Lock()
        self._messages: List[Dict[str, Any]] = []
        self._calls: List[Dict[str, Any]] = []
        self._callbacks: List[Dict[str, Any]] = []
        self._requests_count = 0
        self._faults: Deque[Tuple[str, float]] = collections.deque()
        self._number_errors: Dict[str, Tuple[int, int, str]] = {}
        self._slow_numbers: Dict[str, Tuple[float, bool]] = {}
        self._delivery_failures: Dict[str, Tuple[str, int]] = {}

        self._stopping = threading.Event()
        self._server: Optional[BaseWSGIServer] = None
        self._serve_thread: Optional[threading.Thread] = None
        self._bg_threads: List[threading.Thread] = []

        prefix = f"/{API_VERSION}/Accounts/<account>"
        self._url_map = Map(
            [
                Rule(f"{prefix}/Messages.json", endpoint="create_message", methods=["POST"]),
                Rule(f"{prefix}/Messages.json", endpoint="list_message", methods=["GET"]),
                Rule(f"{prefix}/Messages/<sid>.json", endpoint="fetch_message", methods=["GET"]),
                Rule(f"{prefix}/Calls.json", endpoint="create_call", methods=["POST"]),
                Rule(f"{prefix}/Calls.json", endpoint="list_call", methods=["GET"]),
                Rule(f"{prefix}/Calls/<sid>.json", endpoint="fetch_call", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeTwilio":
        if self._server is not None:
            raise RuntimeError("FakeTwilio already started")
        self._stopping.clear()
        server = make_server(
            self._host, self._port, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        # Track handler threads so server_close() joins them (see _QuietHandler).
        server.daemon_threads = False  # type: ignore[attr-defined]
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeTwilio", daemon=True
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hung requests, and join every thread it started."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()  # joins in-flight request handlers
        if self._serve_thread is not None:
            self._serve_thread.join()
        self._server = None
        self._serve_thread = None
        self.wait_for_callbacks(timeout=self.callback_timeout + 1.0)

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeTwilio is not started")
        return f"http://{self._host}:{self._server.server_port}"

    # ------------------------------------------------------------------ records

    @property
    def messages(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def calls(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls]

    @property
    def callbacks(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def requests_count(self) -> int:
        with self._lock:
            return self._requests_count

    def messages_to(self, number: str) -> List[Dict[str, Any]]:
        return [m for m in self.messages if m["to"] == number]

    def reset(self) -> None:
        """Forget records, counters and faults (background callbacks are awaited first)."""
        self.wait_for_callbacks()
        with self._lock:
            self._messages.clear()
            self._calls.clear()
            self._callbacks.clear()
            self._requests_count = 0
        self.clear_faults()

    # ------------------------------------------------------------------ faults

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` create requests answer ``status`` with a Twilio JSON error."""
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx/5xx code")
        with self._lock:
            self._faults.extend([("fail", float(status))] * n)

    def hang_next(self, n: int = 1, seconds: float = 2.0) -> None:
        """The next ``n`` create requests sleep ``seconds`` then answer 503; nothing is recorded."""
        with self._lock:
            self._faults.extend([("hang", float(seconds))] * n)

    def slow_for(self, number: str, seconds: float, accepted: bool = True) -> None:
        """The next create request to ``number`` is answered only after ``seconds``.

        ``accepted``: the provider took the message at once (it is recorded and listed) and only
        its answer is late, as when the provider is slow to respond; otherwise nothing is
        recorded and the late answer is a 503, as with ``hang_next``.
        """
        with self._lock:
            self._slow_numbers[number] = (float(seconds), accepted)

    def error_for(self, number: str, code: int, status: int = 400, message: Optional[str] = None) -> None:
        """Every create (message or call) to ``number`` answers this Twilio error."""
        with self._lock:
            self._number_errors[number] = (
                code,
                status,
                message or TWILIO_ERROR_MESSAGES.get(code, f"Error {code}"),
            )

    def delivery_failure_for(self, number: str, error_code: int = 30003, status: str = "undelivered") -> None:
        """Messages to ``number`` are accepted, but auto-callbacks end in ``status`` with ErrorCode."""
        if status not in ("undelivered", "failed"):
            raise ValueError("status must be 'undelivered' or 'failed'")
        with self._lock:
            self._delivery_failures[number] = (status, error_code)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._number_errors.clear()
            self._slow_numbers.clear()
            self._delivery_failures.clear()

    # ------------------------------------------------------------------ callbacks

    def sign(self, url: str, params: Dict[str, str]) -> str:
        """``X-Twilio-Signature`` value Twilio would send for this form POST."""
        return self._validator.compute_signature(url, params)

    def post_signed(self, url: str, params: Dict[str, str]) -> Tuple[int, str]:
        """POST ``params`` form-encoded to ``url`` with a valid Twilio signature.

        Also handy to simulate inbound SMS webhooks (From, To, Body, MessageSid,
        AccountSid).  Returns ``(status_code, body_text)``; transport errors raise.
        """
        params = {k: str(v) for k, v in params.items()}
        signature = self.sign(url, params)
        entry: Dict[str, Any] = {
            "url": url, "params": params, "signature": signature, "status_code": None, "error": None,
        }
        try:
            resp = requests.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
                timeout=self.callback_timeout,
                allow_redirects=False,
            )
            try:
                entry["status_code"] = resp.status_code
                return resp.status_code, resp.text
            finally:
                resp.close()
        except requests.RequestException as exc:
            entry["error"] = repr(exc)
            raise
        finally:
            with self._lock:
                self._callbacks.append(entry)

    def send_status_callback(self, sid: str, status: str, error_code: Optional[int] = None) -> Tuple[int, str]:
        """Set a message's/call's status and POST the signed status callback now."""
        record, kind = self._find(sid)
        if record is None:
            raise KeyError(sid)
        url, params = self._status_update(record, kind, status, error_code)
        if not url:
            raise ValueError(f"{sid} has no StatusCallback")
        return self.post_signed(url, params)

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Join background callback threads; True if all finished in time."""
        with self._lock:
            threads = list(self._bg_threads)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._bg_threads = [t for t in self._bg_threads if t.is_alive()]
            return not self._bg_threads

    # ------------------------------------------------------------------ internals

    def _find(self, sid: str) -> Tuple[Optional[Dict[str, Any]], str]:
        with self._lock:
            for kind, items in (("message", self._messages), ("call", self._calls)):
                for rec in items:
                    if rec["sid"] == sid:
                        return rec, kind
        return None, ""

    def _status_update(
        self, record: Dict[str, Any], kind: str, status: str, error_code: Optional[int]
    ) -> Tuple[Optional[str], Dict[str, str]]:
        with self._lock:
            record["status"] = status
            record["updated_at"] = _now()
            if error_code is not None:
                record["error_code"] = error_code
            url = record["status_callback"]
            params: Dict[str, str] = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "To": record["to"]}
            if record["from_"]:
                params["From"] = record["from_"]
            if kind == "message":
                params.update(
                    MessageSid=record["sid"], SmsSid=record["sid"], MessageStatus=status, SmsStatus=status
                )
                if record["messaging_service_sid"]:
                    params["MessagingServiceSid"] = record["messaging_service_sid"]
            else:
                params.update(CallSid=record["sid"], CallStatus=status, Direction="outbound-api")
                if status == "completed":
                    params["CallDuration"] = "0"
                if record["machine_detection"]:
                    params["AnsweredBy"] = "human"
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
        return url, params

    def _run_auto_callbacks(self, sid: str, steps: List[Tuple[str, Optional[int]]]) -> None:
        for status, error_code in steps:
            if self._stopping.wait(self.callback_delay):
                return
            record, kind = self._find(sid)
            if record is None:
                return
            url, params = self._status_update(record, kind, status, error_code)
            if not url:
                return
            try:
                self.post_signed(url, params)
            except requests.RequestException:
                pass  # recorded in self.callbacks with its error

    def _spawn_callbacks(self, sid: str, steps: List[Tuple[str, Optional[int]]]) -> None:
        t = threading.Thread(
            target=self._run_auto_callbacks, args=(sid, steps), name=f"FakeTwilio-cb-{sid}", daemon=True
        )
        with self._lock:
            self._bg_threads = [x for x in self._bg_threads if x.is_alive()]
            self._bg_threads.append(t)
        t.start()

    # ------------------------------------------------------------------ WSGI

    def _wsgi(self, environ: Dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self._requests_count += 1
        try:
            response = self._dispatch(request)
        except MethodNotAllowed:
            response = self._json(_error_body(20004, 405, "Method not allowed"), 405)
        except NotFound:
            response = self._json(_error_body(20404, 404), 404)
        except HTTPException as exc:
            code = exc.code or 500
            response = self._json(_error_body(20000 + code, code, exc.description), code)
        return response(environ, start_response)

    @staticmethod
    def _json(payload: Dict[str, Any], status: int) -> Response:
        return Response(
            json.dumps(payload), status=status, content_type="application/json; charset=utf-8"
        )

    def _dispatch(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        endpoint, args = adapter.match()

        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username != self.account_sid
            or auth.password != self.auth_token
        ):
            resp = self._json(_error_body(20003, 401), 401)
            resp.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return resp
        if args["account"] != self.account_sid:
            return self._json(_error_body(20404, 404), 404)

        if endpoint.startswith("create_"):
            fault = self._take_fault()
            if fault is not None:
                kind, value = fault
                if kind == "hang":
                    self._stopping.wait(value)
                    return self._json(_error_body(20503, 503), 503)
                status = int(value)
                return self._json(_error_body(20000 + status, status, "Injected failure"), status)

        if endpoint.startswith("list_"):
            return self._list(endpoint[len("list_"):], request.args)
        form = request.form
        if endpoint.startswith("create_"):
            with self._lock:
                slow = self._slow_numbers.pop(form.get("To", "").strip(), None)
            if slow is not None:
                seconds, accepted = slow
                if not accepted:
                    self._stopping.wait(seconds)
                    return self._json(_error_body(20503, 503), 503)
                create = self._create_message if endpoint == "create_message" else self._create_call
                response = create(form)
                self._stopping.wait(seconds)
                return response
        if endpoint == "create_message":
            return self._create_message(form)
        if endpoint == "create_call":
            return self._create_call(form)
        record, kind = self._find(args["sid"])
        if record is None or kind != endpoint[len("fetch_"):]:
            return self._json(_error_body(20404, 404), 404)
        if kind == "message":
            return self._json(self._message_json(record), 200)
        return self._json(self._call_json(record), 200)

    def _take_fault(self) -> Optional[Tuple[str, float]]:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _number_error(self, number: str) -> Optional[Response]:
        with self._lock:
            err = self._number_errors.get(number)
        if err is None:
            return None
        code, status, message = err
        return self._json(_error_body(code, status, message), status)

    def _create_message(self, form: Any) -> Response:
        to = form.get("To", "").strip()
        from_ = form.get("From", "").strip() or None
        mss = form.get("MessagingServiceSid", "").strip() or None
        body = form.get("Body")
        if not to:
            return self._json(_error_body(21604, 400), 400)
        if not from_ and not mss:
            return self._json(_error_body(21603, 400), 400)
        if not body:
            return self._json(_error_body(21602, 400), 400)
        if len(body) > 1600:
            return self._json(_error_body(21617, 400), 400)
        err = self._number_error(to)
        if err is not None:
            return err
        now = _now()
        record: Dict[str, Any] = {
            "sid": "SM" + uuid.uuid4().hex,
            "to": to,
            "from_": from_,
            "body": body,
            "messaging_service_sid": mss,
            "status_callback": form.get("StatusCallback") or None,
            "status": "queued",
            "num_segments": _num_segments(body),
            "error_code": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._messages.append(record)
            failure = self._delivery_failures.get(to)
            payload = self._message_json(record)
        if self.auto_callbacks and record["status_callback"]:
            final: Tuple[str, Optional[int]] = failure if failure else ("delivered", None)
            self._spawn_callbacks(record["sid"], [("sent", None), final])
        return self._json(payload, 201)

    def _create_call(self, form: Any) -> Response:
        to = form.get("To", "").strip()
        from_ = form.get("From", "").strip()
        url = form.get("Url") or None
        twiml = form.get("Twiml") or None
        if not to:
            return self._json(_error_body(21201, 400), 400)
        if not from_:
            return self._json(_error_body(21213, 400), 400)
        if not url and not twiml and not form.get("ApplicationSid"):
            return self._json(_error_body(21205, 400), 400)
        err = self._number_error(to)
        if err is not None:
            return err
        now = _now()
        record: Dict[str, Any] = {
            "sid": "CA" + uuid.uuid4().hex,
            "to": to,
            "from_": from_,
            "url": url,
            "twiml": twiml,
            "status_callback": form.get("StatusCallback") or None,
            "machine_detection": form.get("MachineDetection") or None,
            "status": "queued",
            "error_code": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._calls.append(record)
            payload = self._call_json(record)
        if self.auto_callbacks and record["status_callback"]:
            self._spawn_callbacks(record["sid"], [("completed", None)])
        return self._json(payload, 201)

    def _list(self, kind: str, args: Any) -> Response:
        try:
            page_size = max(1, min(1000, int(args.get("PageSize", "50"))))
            page = max(0, int(args.get("Page", "0")))
        except ValueError:
            return self._json(_error_body(20001, 400, "Invalid paging parameter"), 400)
        filters = {k: v for k, v in args.items() if k not in ("PageSize", "Page", "PageToken")}
        try:
            keep = self._list_filter(kind, filters)
        except ValueError:
            return self._json(_error_body(20001, 400, "Invalid filter value"), 400)
        with self._lock:
            source = self._messages if kind == "message" else self._calls
            # Newest first; records made in the same instant keep their reverse arrival order.
            ordered = [dict(r) for r in reversed(source) if keep(r)]
        ordered.sort(key=lambda r: r["created_at"], reverse=True)
        start = 0
        token = args.get("PageToken", "")
        if token.startswith("PA"):
            after = token[2:]
            positions = [i for i, r in enumerate(ordered) if r["sid"] == after]
            start = positions[0] + 1 if positions else len(ordered)
        chunk = ordered[start:start + page_size]
        key = "messages" if kind == "message" else "calls"
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/{'Messages' if kind == 'message' else 'Calls'}.json"

        def uri(extra: Dict[str, str]) -> str:
            return path + "?" + urlencode({**filters, "PageSize": str(page_size), **extra})

        has_more = start + page_size < len(ordered)
        payload = {
            key: [self._message_json(r) if kind == "message" else self._call_json(r) for r in chunk],
            "end": start + len(chunk) - 1 if chunk else 0,
            "first_page_uri": uri({"Page": "0"}),
            "next_page_uri": uri({"Page": str(page + 1), "PageToken": "PA" + chunk[-1]["sid"]})
            if has_more and chunk else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": start,
            "uri": uri({"Page": str(page)}),
        }
        return self._json(payload, 200)

    @staticmethod
    def _list_filter(kind: str, filters: Dict[str, str]) -> Any:
        checks = []
        if filters.get("To"):
            checks.append(lambda r, v=filters["To"]: r["to"] == v)
        if filters.get("From"):
            checks.append(lambda r, v=filters["From"]: r["from_"] == v)
        if kind == "call" and filters.get("Status"):
            checks.append(lambda r, v=filters["Status"]: r["status"] == v)
        if kind == "message":
            for key, op in (("DateSent", "eq"), ("DateSent<", "le"), ("DateSent>", "ge")):
                if filters.get(key):
                    checks.append(_date_sent_check(filters[key], op))
        return lambda r: all(check(r) for check in checks)

    def _message_json(self, rec: Dict[str, Any]) -> Dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{rec['sid']}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": rec["body"],
            "date_created": _rfc2822(rec["created_at"]),
            "date_sent": _rfc2822(_date_sent(rec)),
            "date_updated": _rfc2822(rec["updated_at"]),
            "direction": "outbound-api",
            "error_code": rec["error_code"],
            "error_message": None,
            "from": rec["from_"],
            "messaging_service_sid": rec["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(rec["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": rec["sid"],
            "status": rec["status"],
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": rec["to"],
            "uri": uri,
        }

    def _call_json(self, rec: Dict[str, Any]) -> Dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{rec['sid']}.json"
        base = uri[: -len(".json")]
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(rec["created_at"]),
            "date_updated": _rfc2822(rec["updated_at"]),
            "direction": "outbound-api",
            "duration": "0" if rec["status"] == "completed" else None,
            "end_time": None,
            "forwarded_from": None,
            "from": rec["from_"],
            "from_formatted": rec["from_"],
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": rec["sid"],
            "start_time": None,
            "status": rec["status"],
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
            },
            "to": rec["to"],
            "to_formatted": rec["to"],
            "trunk_sid": None,
            "uri": uri,
        }
