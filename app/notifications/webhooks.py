"""Twilio webhooks: inbound SMS and status callbacks, accepted only when signed by Twilio.

The signature is checked against the public URL (``PUBLIC_BASE_URL`` + path and query),
which is what Twilio signed, not the URL this process sees behind a proxy.

A signed request that the database cannot take (down, failing over, refusing) is written to
this host's spool and answered normally; it reaches the database as soon as that answers
(``app.notifications.spool``). Only a spool that cannot be written answers 503.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_babel import gettext as _
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.extensions import csrf

from . import spool
from .inbound import screen_reply
from .models import MessageChannel

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


def _twiml_reply(form) -> str | None:
    """The text to answer in the webhook's own TwiML (``<Message>``), computed before anything is
    stored, without needing the database, so it is given even while the database is down: the
    safety reply when the emergency scan reads a red flag in the text (``screen_reply``), else
    None. The ``process-inbound`` job records it and never sends it again."""
    return screen_reply(form.get("From", ""), form.get("Body", ""))


def _twiml(reply: str | None) -> Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), mimetype="application/xml")


def _not_stored() -> tuple[Response, int]:
    """503 when neither the database nor the spool took the request: Twilio then calls the
    number's Fallback URL, if one is set. The body says only what is known."""
    message = _("Not stored: the database could not take this request and this server could not "
                "write it to its local spool.")
    return jsonify({"error": {"code": 503, "message": message}}), 503


@bp.post("/sms")
@require_twilio_signature
def inbound_sms():
    """Answer (the TwiML reply first), then queue the message, or spool it while the database
    cannot take it: the ``process-inbound`` job reads it within seconds of it reaching the
    database, and the replies leave through the outbox."""
    form = request.form
    reply = _twiml_reply(form)
    try:
        spool.accept_or_spool_sms(
            from_number=form.get("From", ""),
            to_number=form.get("To", ""),
            body=form.get("Body", ""),
            provider_sid=form.get("MessageSid") or form.get("SmsSid"),
            webhook_reply=reply,
        )
    except spool.SpoolUnavailable:
        return _not_stored()
    return _twiml(reply)


@bp.post("/status")
@require_twilio_signature
def status_callback():
    form = request.form
    if form.get("CallSid"):
        sid, status, channel = form["CallSid"], form.get("CallStatus", ""), MessageChannel.VOICE
    else:
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status, channel = form.get("MessageStatus") or form.get("SmsStatus") or "", MessageChannel.SMS
    try:
        spool.apply_or_spool_status(
            sid=sid[:64], status=status, channel=channel,
            error_code=_int_or_none(form.get("ErrorCode")),
            to_number=form.get("To", "")[:40] or None, from_number=form.get("From", "")[:40] or None,
        )
    except spool.SpoolUnavailable:
        return _not_stored()
    return Response(status=204)
