"""The acknowledgement link of a page: ``/a/<token>``, no sign-in, the token is the credential.

GET only shows a button (phones and chat apps open links to preview them, and that must not
acknowledge anything); POST, with its CSRF token, acknowledges. The page names the site code,
never the patient or the reason.
"""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from app.care.models import Site
from app.core import audit
from app.extensions import db

from .oncall_forms import ConfirmForm
from .paging import LinkRefused, acknowledge_by_link, page_for_token

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
