"""Twilio webhooks: inbound SMS and status callbacks, accepted only when signed by Twilio.

The signature is checked against the public URL (``PUBLIC_BASE_URL`` + path and query),
which is what Twilio signed, not the URL this process sees behind a proxy.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.extensions import csrf, db

from .inbound import accept_sms, screen_reply
from .models import MessageChannel
from .status import apply_status_callback

log = logging.getLogger("oncolink.notifications")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"


def public_url(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _signed_url() -> str:
    return public_url(request.full_path).removesuffix("?")


def require_twilio_signature(view: Callable) -> Callable:
    """403 unless ``X-Twilio-Signature`` matches the public URL and the form, for our token."""

    @wraps(view)
    def checked(*args, **kwargs):
        token = current_app.config.get("TWILIO_AUTH_TOKEN")
        signature = request.headers.get("X-Twilio-Signature", "")
        # No token (development with the console provider): nothing can be verified, so
        # nothing is accepted; the development page calls receive_sms directly.
        if not token or not signature:
            abort(403)
        if not RequestValidator(token).validate(_signed_url(), request.form, signature):
            log.warning("webhook with an invalid Twilio signature on %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


_EMPTY_TWIML = str(MessagingResponse())


def _twiml(reply: str | None) -> str:
    if not reply:
        return _EMPTY_TWIML
    response = MessagingResponse()
    response.message(reply)
    return str(response)


@bp.post("/sms")
@require_twilio_signature
def inbound_sms():
    """Queue the message (committed before the 200) and answer with TwiML: empty, or the safety
    reply when the text reads as an emergency (``screen_reply``: no scheduler and no database
    needed, so the patient is told what to do whatever else is down). The ``process-inbound``
    job reads the message within seconds, raises the alert, records that reply and never sends
    it again; other replies leave through the outbox."""
    form = request.form
    reply = screen_reply(form.get("From", ""), form.get("Body", ""))
    stored = accept_sms(
        from_number=form.get("From", ""),
        to_number=form.get("To", ""),
        body=form.get("Body", ""),
        provider_sid=form.get("MessageSid") or form.get("SmsSid"),
        webhook_reply=reply,
    )
    if reply and not stored:
        # The same text again (a provider retry, or its Fallback URL after a timeout): the first
        # answer may never have reached the patient, so the safety reply goes again.
        log.info("safety reply repeated for a text already stored")
    return Response(_twiml(reply), mimetype="application/xml")


@bp.post("/status")
@require_twilio_signature
def status_callback():
    form = request.form
    if form.get("CallSid"):
        sid, status, channel = form["CallSid"], form.get("CallStatus", ""), MessageChannel.VOICE
    else:
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status, channel = form.get("MessageStatus") or form.get("SmsStatus") or "", MessageChannel.SMS
    apply_status_callback(
        sid=sid[:64], status=status, channel=channel,
        error_code=_int_or_none(form.get("ErrorCode")),
        to_number=form.get("To", "")[:40] or None, from_number=form.get("From", "")[:40] or None,
    )
    db.session.commit()
    return Response(status=204)
