"""SMS and voice providers behind one interface: Twilio for real, the console for development.

A provider call either returns a ``ProviderResult`` or raises ``TemporaryProviderError``
(try again later: 5xx, 429, timeouts, connection errors, bad credentials) or
``PermanentProviderError`` (the provider refused this message for good: invalid or
unsubscribed number, ...). Nothing here touches the database.
"""
from __future__ import annotations

import logging
import sys
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import requests
from flask import Flask
from twilio.base.exceptions import TwilioException, TwilioRestException

from config import ConfigError

from .twilio_client import make_twilio_client

log = logging.getLogger("oncolink.notifications")

# Twilio error codes that need an action besides failing the message.
ERROR_UNSUBSCRIBED = 21610  # the recipient replied STOP to our sender
ERROR_NOT_MOBILE = 21614
ERROR_INVALID_NUMBER = 21211
# HTTP statuses worth retrying: the request may succeed later as it is.
_RETRY_HTTP = {401, 403, 408, 409, 425, 429}
_RETRY_CODES = {20429, 20003, 20500, 20503}


@dataclass(frozen=True)
class ProviderResult:
    sid: str
    status: str


@dataclass(frozen=True)
class SentRecord:
    """A message or call the provider holds, as listed for reconciliation."""

    sid: str
    to: str
    body: str | None
    created_at: datetime | None
    status: str | None = None


class ProviderError(Exception):
    """Base of provider failures. ``description`` never carries message content."""

    def __init__(self, description: str, code: int | None = None):
        super().__init__(description)
        self.description = description[:200]
        self.code = code


class TemporaryProviderError(ProviderError):
    """Worth retrying later; the provider may or may not have accepted the request."""


class PermanentProviderError(ProviderError):
    """The provider refused this message for good; retrying would not help."""


class SmsProvider(ABC):
    """What the dispatcher needs from a provider."""

    name: str = "abstract"
    sender: str | None = None  # shown as the "from" of outbound Message rows

    @abstractmethod
    def send_sms(self, to: str, body: str, status_callback: str | None) -> ProviderResult:
        """Hand one SMS to the provider."""

    @abstractmethod
    def start_call(self, to: str, url: str, status_callback: str | None) -> ProviderResult:
        """Start an automated call whose TwiML is fetched from ``url``."""

    @abstractmethod
    def recent_messages(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        """Messages to ``to`` created at or after ``since`` (newest first)."""

    @abstractmethod
    def recent_calls(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        """Calls to ``to`` created at or after ``since`` (newest first)."""

    def close(self) -> None:
        """Release connections."""


def classify_twilio_error(exc: BaseException) -> ProviderError:
    """Map an exception raised by the Twilio SDK (or its HTTP layer) to our two kinds."""
    if isinstance(exc, TwilioRestException):
        status, code = exc.status, exc.code
        label = f"HTTP {status}" + (f" error {code}" if code else "")
        if status >= 500 or status in _RETRY_HTTP or code in _RETRY_CODES:
            return TemporaryProviderError(label, code)
        return PermanentProviderError(label, code)
    if isinstance(exc, requests.exceptions.Timeout):
        return TemporaryProviderError("timeout")
    if isinstance(exc, requests.exceptions.RequestException):
        return TemporaryProviderError("connection error")
    if isinstance(exc, TwilioException):
        return TemporaryProviderError("provider answer not understood")
    return TemporaryProviderError(f"unexpected {type(exc).__name__}")


class TwilioProvider(SmsProvider):
    """Twilio's REST API through the official SDK (``api_base_url`` redirects it in tests).

    Safe to share between threads: each thread gets its own SDK client. One client must not
    serve two threads at once: ``TwilioHttpClient.request`` keeps the response in an attribute
    and returns that attribute, so a concurrent request could hand one send the other's SID.
    """

    name = "twilio"
    # Call progress events Twilio reports to the status callback (default: completed only).
    CALL_STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str | None = None,
                 messaging_service_sid: str | None = None, api_base_url: str | None = None,
                 timeout: float = 10.0):
        if not from_number and not messaging_service_sid:
            raise ConfigError("Twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        # The SDK logs request URLs at INFO, with phone numbers in list queries.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        self._client_args = (account_sid, auth_token, api_base_url, timeout)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self.client  # noqa: B018 - built now: a bad setting fails here, not at the first send
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.sender = from_number or messaging_service_sid

    @property
    def client(self) -> Any:
        """This thread's SDK client."""
        client = getattr(self._local, "client", None)
        if client is None:
            account_sid, auth_token, api_base_url, timeout = self._client_args
            client = make_twilio_client(account_sid, auth_token, api_base_url=api_base_url, timeout=timeout)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def send_sms(self, to: str, body: str, status_callback: str | None) -> ProviderResult:
        kwargs: dict[str, Any] = {"to": to, "body": body}
        # A messaging service picks the sender (short code, alphanumeric, pool) itself.
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except Exception as exc:  # every failure is classified, none escapes raw
            raise classify_twilio_error(exc) from exc
        return ProviderResult(sid=message.sid, status=message.status or "queued")

    def start_call(self, to: str, url: str, status_callback: str | None) -> ProviderResult:
        if not self.from_number:
            raise PermanentProviderError("no caller number configured (TWILIO_FROM_NUMBER)")
        kwargs: dict[str, Any] = {"to": to, "from_": self.from_number, "url": url}
        if status_callback:
            kwargs["status_callback"] = status_callback
            kwargs["status_callback_event"] = list(self.CALL_STATUS_EVENTS)
        try:
            call = self.client.calls.create(**kwargs)
        except Exception as exc:
            raise classify_twilio_error(exc) from exc
        return ProviderResult(sid=call.sid, status=call.status or "queued")

    def recent_messages(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        # No DateSent filter: a message still waiting in the provider's queue has no
        # date_sent yet, and that is exactly the one a reconciliation must not miss.
        try:
            found = []
            for message in self.client.messages.stream(to=to, limit=limit, page_size=50):
                if message.date_created is not None and message.date_created < since:
                    break  # newest first: the rest is older
                found.append(SentRecord(message.sid, message.to, message.body, message.date_created,
                                         message.status))
            return found
        except Exception as exc:
            raise classify_twilio_error(exc) from exc

    def recent_calls(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        try:
            found = []
            for call in self.client.calls.stream(to=to, limit=limit, page_size=50):
                if call.date_created is not None and call.date_created < since:
                    break
                found.append(SentRecord(call.sid, call.to, None, call.date_created, call.status))
            return found
        except Exception as exc:
            raise classify_twilio_error(exc) from exc

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.http_client.close()


class ConsoleProvider(SmsProvider):
    """Development only: prints what would be sent and pretends it was delivered."""

    name = "console"
    sender = "+33000000000"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def _print(self, line: str) -> None:
        stream = self.stream or sys.stdout
        print(line, file=stream, flush=True)

    def send_sms(self, to: str, body: str, status_callback: str | None) -> ProviderResult:
        self._print(f"[SMS to {to}] {body}")
        return ProviderResult(sid="SMconsole" + uuid.uuid4().hex[:25], status="delivered")

    def start_call(self, to: str, url: str, status_callback: str | None) -> ProviderResult:
        self._print(f"[CALL to {to}] {url}")
        return ProviderResult(sid="CAconsole" + uuid.uuid4().hex[:25], status="completed")

    # The console keeps nothing: after a crash in development a message may print twice.
    def recent_messages(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        return []

    def recent_calls(self, to: str, since: datetime, limit: int = 500) -> list[SentRecord]:
        return []


def get_provider(app: Flask) -> SmsProvider:
    """The provider chosen by ``SMS_PROVIDER``; the caller closes it."""
    config = app.config
    kind = (config.get("SMS_PROVIDER") or "console").lower()
    if kind == "console":
        return ConsoleProvider()
    if kind == "twilio":
        sid, token = config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_AUTH_TOKEN")
        if not sid or not token:
            raise ConfigError("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return TwilioProvider(
            account_sid=sid,
            auth_token=token,
            from_number=config.get("TWILIO_FROM_NUMBER"),
            messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
            api_base_url=config.get("TWILIO_API_BASE_URL"),
            timeout=float(config.get("TWILIO_TIMEOUT_SECONDS", 10.0)),
        )
    raise ConfigError(f"unknown SMS_PROVIDER {kind!r}: choose console or twilio")
