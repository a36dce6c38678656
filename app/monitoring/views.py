"""The platform page for admins (health checks, faults, delivery failure rates per sender) and the
TwiML of a fault report by voice call."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from flask_babel import force_locale
from flask_login import login_required
from itsdangerous import BadSignature, URLSafeSerializer
from twilio.twiml.voice_response import VoiceResponse

from app.core.roles import Role
from app.extensions import csrf, db
from app.notifications.webhooks import require_twilio_signature
from app.web.access import roles_required
from app.web.rendering import render_then_commit

from . import queries
from .models import PlatformFault
from .watch import CHECK_LABELS, fault_text

bp = Blueprint("monitoring", __name__)


@bp.get("/admin/platform/")
@login_required
@roles_required(Role.ADMIN)
def index():
    from app.web.health import platform_health

    health = platform_health()
    return render_then_commit("monitoring/index.html", health=health, labels=CHECK_LABELS,
                              senders=queries.delivery_by_sender(7), faults=queries.recent_faults())


@bp.post("/webhooks/twilio/fault/<signed>")
@require_twilio_signature
def voice_fault(signed: str):
    """The fault report (or all-clear) spoken twice."""
    try:
        fault_id, cleared = URLSafeSerializer(current_app.config["SECRET_KEY"], salt="oncolink-fault-voice").loads(signed)
    except (BadSignature, ValueError, TypeError):
        abort(404)
    fault = db.session.get(PlatformFault, int(fault_id))
    if fault is None:
        abort(404)
    language = current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    response = VoiceResponse()
    with force_locale(language):
        text = fault_text(fault, cleared=bool(cleared) and fault.cleared_at is not None)
    for _i in range(2):
        response.say(text, language="fr-FR" if language == "fr" else "en-GB")
    response.hangup()
    return Response(str(response), mimetype="application/xml")


csrf.exempt(voice_fault)
