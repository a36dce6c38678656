"""The acknowledgement link of a page: ``/a/<token>``, no sign-in, the token is the credential;
and the TwiML of a page by voice call.

GET only shows a button (phones and chat apps open links to preview them, and that must not
acknowledge anything); POST, with its CSRF token, acknowledges. The page names the site code,
never the patient or the reason.

A call's TwiML (``/webhooks/twilio/page/<signed>``, Twilio's signature required, as the check-in
calls) speaks the page in the person's language three times, each inside a keypad ``<Gather>``;
pressing 1 acknowledges the alert like the SMS reply and the link do.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from twilio.twiml.voice_response import VoiceResponse

from app.care.models import Site
from app.core import audit
from app.core.time import utcnow
from app.extensions import csrf, db
from app.notifications.webhooks import require_twilio_signature

from .models import AlertStatus
from .oncall_forms import ConfirmForm
from .paging import (
    AckVia,
    AlertPage,
    LinkRefused,
    _acknowledge,
    _digest,
    acknowledge_by_link,
    page_for_token,
    read_voice_path,
)

bp = Blueprint("paging", __name__)


def _refusal_message(reason: str) -> str:
    return {
        "used": _("This link was already used: the alert is acknowledged."),
        "closed": _("This alert was already acknowledged by a colleague. Nothing more to do here."),
        "expired": _("This link has expired. Sign in to Onco'Link to see the alert."),
    }.get(reason, _("This link is not valid."))


def _private(body: str, status: int = 200):
    """The token is in the URL: never send it on as a referrer, never index the page."""
    return body, status, {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


def _site_code(alert) -> str:
    site = db.session.get(Site, alert.site_id)
    return site.code if site else ""


def _refused(exc: LinkRefused):
    return _private(render_template("oncall/ack_refused.html", message=_refusal_message(exc.reason)), exc.status)


@bp.get("/a/<token>")
def link(token: str):
    try:
        _page, alert = page_for_token(token)
    except LinkRefused as exc:
        return _refused(exc)
    return _private(render_template("oncall/ack.html", form=ConfirmForm(), token=token,
                                    site_code=_site_code(alert)))


@bp.post("/a/<token>")
def link_acknowledge(token: str):
    try:
        _page, alert = acknowledge_by_link(token)
    except LinkRefused as exc:
        db.session.rollback()
        audit.record("page_link_refused", detail={"reason": exc.reason})
        db.session.commit()
        return _refused(exc)
    site_code = _site_code(alert)
    db.session.commit()
    return _private(render_template("oncall/ack_done.html", site_code=site_code, alert_id=alert.id))


# --- a page by voice call --------------------------------------------------------------------

VOICES = {"fr": "fr-FR", "en": "en-GB"}
REPEATS = 3


def _voice_page(signed: str, *, lock: bool = False) -> tuple[AlertPage, object, str]:
    """The page of a signed call URL (404 when it is not one of ours), its alert, its language."""
    from .models import Alert

    found = read_voice_path(signed)
    if found is None:
        abort(404)
    alert_id, level, token = found
    query = db.select(AlertPage).where(AlertPage.alert_id == alert_id, AlertPage.level == level)
    page = db.session.scalar(query.with_for_update() if lock else query)
    if page is None or page.token_digest != _digest(token):
        abort(404)
    alert = db.session.get(Alert, alert_id, with_for_update=lock)
    language = page.professional.language if page.professional is not None else None
    language = language if language in VOICES else current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    return page, alert, language


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="application/xml")


def _spoken_site(alert) -> str:
    site = db.session.get(Site, alert.site_id)
    # Letters one by one, so that "LYN" is not read as a word.
    return " ".join(site.code) if site else ""


@bp.post("/webhooks/twilio/page/<signed>")
@require_twilio_signature
def voice_page(signed: str):
    """The spoken page: the site and "press 1", three times, then goodbye."""
    page, alert, language = _voice_page(signed)
    response, voice = VoiceResponse(), VOICES[language]
    with force_locale(language):
        if page.acknowledged_at is not None or alert.status != AlertStatus.OPEN:
            response.say(_("This is Onco'Link. This alert was already acknowledged. Thank you."), language=voice)
            response.hangup()
            return _twiml(response)
        text = _("This is Onco'Link. An urgent alert at site %(site)s needs you. Press 1 to acknowledge it.",
                 site=_spoken_site(alert))
        for _i in range(REPEATS):
            gather = response.gather(input="dtmf", num_digits=1, timeout=6, method="POST", language=voice,
                                     action=url_for("paging.voice_page_key", signed=signed))
            gather.say(text, language=voice)
        response.say(_("No key was pressed: the alert is not acknowledged, and the next person will be paged."),
                     language=voice)
        response.hangup()
    return _twiml(response)


@bp.post("/webhooks/twilio/page/<signed>/key")
@require_twilio_signature
def voice_page_key(signed: str):
    """A key pressed during the page: 1 acknowledges, anything else hears the page again."""
    page, alert, language = _voice_page(signed, lock=True)
    response, voice = VoiceResponse(), VOICES[language]
    with force_locale(language):
        if request.form.get("Digits", "")[:1] != "1":
            response.redirect(url_for("paging.voice_page", signed=signed), method="POST")
            return _twiml(response)
        if page.acknowledged_at is not None or alert.status != AlertStatus.OPEN:
            response.say(_("This is Onco'Link. This alert was already acknowledged. Thank you."), language=voice)
        else:
            _acknowledge(page, alert, AckVia.VOICE, utcnow())
            db.session.commit()
            response.say(_("Alert %(code)s acknowledged. Thank you. Sign in to Onco'Link to see it.",
                           code=alert.id), language=voice)
        response.hangup()
    return _twiml(response)


csrf.exempt(voice_page)
csrf.exempt(voice_page_key)
