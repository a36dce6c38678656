"""Paging professionals about red alerts, and their acknowledgement by SMS reply, signed link or
the keypad of a call.

A page is an outbox SMS, an outbox call, or both, written in the transaction that raises (or
escalates) the alert, in the outbox's urgent lane. Its text names only the site code and how to
acknowledge: no patient, no symptom. The link carries a random token; only its keyed digest is
stored, it works once, for 24 h. A call fetches its TwiML from a signed URL holding the same
token (``paging_views``): the message is spoken in the person's language, three times, and
pressing 1 acknowledges.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from flask_babel import force_locale
from itsdangerous import URLSafeSerializer
from flask_babel import gettext as _
from sqlalchemy import insert, or_, select

from app.care.models import Professional, Site
from app.core import audit, batching
from app.core.audit import AuditContext
from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db
from app.notifications.models import OutboxEntry
from app.notifications.outbox import PRIORITY_URGENT, enqueue_call, enqueue_sms
from app.notifications.segments import fits

from .models import Alert, AlertAction, AlertStatus
from .oncall import ChainStep, Policy, StepKind, chains_for, on_call_now, policies_for
from .oncall_channels import PageChannel, resolve

log = logging.getLogger("oncolink.triage")

LINK_LIFETIME = timedelta(hours=24)
PAGE_PURPOSE = "page"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_ACK = re.compile(r"^\s*(ok|oui|yes)\b[\s,.:#-]*(\d{1,9})?[\s.!]*$", re.IGNORECASE)


class TargetKind(StrEnum):
    ON_CALL = "on_call"
    PROFESSIONAL = "professional"
    FALLBACK = "fallback"


class AckVia(StrEnum):
    SMS = "sms"
    LINK = "link"
    VOICE = "voice"  # pressed 1 during the page's call


class AlertPage(db.Model):
    """One SMS page about a red alert: who, which level of the chain, and its acknowledgement."""

    __tablename__ = "alert_page"

    id = db.Column(db.Integer, primary_key=True)
    alert_id = db.Column(db.Integer, db.ForeignKey("alert.id"), nullable=False)
    level = db.Column(db.Integer, nullable=False)
    target = db.Column(db.String(15), nullable=False)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), index=True)
    phone = db.Column(db.String(20), nullable=False)
    # sms, voice or both: the text (or the call) is ``outbox_id``; with both, the call is ``call_outbox_id``.
    channel = db.Column(db.String(5), nullable=False, default="sms", server_default="sms")
    outbox_id = db.Column(db.Integer, db.ForeignKey("outbox_entry.id"), nullable=False)
    call_outbox_id = db.Column(db.Integer, db.ForeignKey("outbox_entry.id"))
    sent_at = db.Column(UTCDateTime(), nullable=False)
    token_digest = db.Column(db.String(64), nullable=False, unique=True)
    acknowledged_at = db.Column(UTCDateTime())
    acknowledged_via = db.Column(db.String(5))
    # Every channel of the page failed (refused, dead, undelivered, call not answered).
    failed_at = db.Column(UTCDateTime())

    professional = db.relationship("Professional")

    __table_args__ = (
        # One page per level of an alert: two escalation runs at once cannot both page it.
        db.UniqueConstraint("alert_id", "level", name="uq_alert_page_alert_level"),
        db.CheckConstraint("target IN ('on_call', 'professional', 'fallback')", name="target"),
        db.CheckConstraint("acknowledged_via IS NULL OR acknowledged_via IN ('sms', 'link', 'voice')", name="via"),
        db.CheckConstraint("channel IN ('sms', 'voice', 'both')", name="channel"),
    )

    def __repr__(self) -> str:
        return f"<AlertPage {self.id} alert={self.alert_id} level={self.level} {self.target}>"


@dataclass(frozen=True)
class Target:
    level: int
    kind: str
    phone: str
    professional: Professional | None = None
    label: str = ""
    channel: str = PageChannel.SMS  # resolved: sms, voice or both

    @property
    def role(self) -> str:
        """For the alert history: a role or "fallback", never a name."""
        if self.professional is None:
            return "fallback"
        prefix = "on-call " if self.kind == TargetKind.ON_CALL else ""
        return prefix + self.professional.role


@dataclass
class SiteContext:
    """What choosing a target needs for one site, loaded once per batch of alerts."""

    code: str
    policy: Policy
    chain: tuple[ChainStep, ...]
    on_call: Professional | None
    people: dict[int, Professional]

    def target_at(self, level: int) -> Target | None:
        """The target of ``level``, or None when that step cannot be paged now."""
        if level >= len(self.chain):
            return self.fallback(level)
        step = self.chain[level]
        prof = self.on_call if step.kind == StepKind.ON_CALL else self.people.get(step.professional_id)
        if prof is None or not prof.active or not prof.phone:
            return None
        kind = TargetKind.ON_CALL if step.kind == StepKind.ON_CALL else TargetKind.PROFESSIONAL
        return Target(level, kind, prof.phone, prof, channel=resolve(step.channel, prof.phone))

    def first_target(self) -> Target:
        if self.chain[0].kind == StepKind.ON_CALL and self.on_call is None:
            return self.fallback(len(self.chain))  # a gap in the rota: straight to the fallback
        return self.next_target(-1)

    def next_target(self, after_level: int, after_kind: str | None = None) -> Target:
        """The first pageable level after ``after_level``; the fallback again once reached."""
        if after_kind == TargetKind.FALLBACK:
            return self.fallback(after_level + 1)
        level = after_level + 1
        while True:
            target = self.target_at(level)
            if target is not None:
                return target
            level += 1

    def fallback(self, level: int) -> Target:
        phone = self.policy.fallback_phone
        return Target(max(level, len(self.chain)), TargetKind.FALLBACK, phone, None, self.policy.fallback_label,
                      channel=resolve(self.policy.fallback_channel, phone))


def site_contexts(site_ids, now: datetime) -> dict[int, SiteContext]:
    """Policies, chains, on-call people and named people of these sites: five queries in all."""
    site_ids = sorted(set(site_ids))
    if not site_ids:
        return {}
    codes = dict(db.session.execute(select(Site.id, Site.code).where(Site.id.in_(site_ids))).all())
    policies, chains, on_call = policies_for(site_ids), chains_for(site_ids), on_call_now(site_ids, now)
    wanted = {s.professional_id for chain in chains.values() for s in chain if s.professional_id}
    people = {p.id: p for p in db.session.scalars(select(Professional).where(Professional.id.in_(wanted)))} \
        if wanted else {}
    return {sid: SiteContext(codes[sid], policies[sid], chains[sid], on_call.get(sid), people) for sid in site_ids}


# --- writing a page --------------------------------------------------------------------------

def _digest(token: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def page_link(token: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/a/" + token


def page_text(*, site_code: str, alert_id: int, link: str, can_reply: bool, language: str | None) -> str:
    """The page: the site, the acknowledgement instructions, nothing about the patient."""
    locale = language or current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    with force_locale(locale):
        if can_reply:
            candidates = [
                _("Onco'Link: an urgent alert at %(site)s needs you. Reply OK %(code)s to acknowledge, "
                  "or open %(link)s", site=site_code, code=alert_id, link=link),
                _("Onco'Link: urgent alert at %(site)s. Reply OK %(code)s to acknowledge.",
                  site=site_code, code=alert_id),
            ]
        else:
            candidates = [
                _("Onco'Link: an urgent alert at %(site)s needs someone now. Open %(link)s to acknowledge.",
                  site=site_code, link=link),
                # The fallback number has no account: its page must always carry the link.
                _("Onco'Link: urgent alert %(site)s, acknowledge: %(link)s", site=site_code, link=link),
            ]
    return next((text for text in candidates if fits(text, 2)), candidates[-1])


def _page_insert():
    """INSERT of pages that skips an (alert, level) already there instead of failing."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the two supported databases are above
        return insert(AlertPage)
    return dialect_insert(AlertPage).on_conflict_do_nothing()


def _voice_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="oncolink-page-voice")


VOICE_PREFIX = "/webhooks/twilio/page"


def voice_page_path(alert_id: int, level: int, token: str) -> str:
    """The TwiML URL of a page's call: signed, and holding the page's token (its credential)."""
    return f"{VOICE_PREFIX}/{_voice_serializer().dumps([alert_id, level, token])}"


def read_voice_path(signed: str) -> tuple[int, int, str] | None:
    """(alert, level, token) of a signed call URL, or None when it was not made here."""
    from itsdangerous import BadSignature

    try:
        alert_id, level, token = _voice_serializer().loads(signed)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(alert_id), int(level), str(token)


def _queue_page(alert: Alert, target: Target, token: str,
                site_code: str) -> tuple[OutboxEntry, OutboxEntry | None] | None:
    """The page's outbox rows (its text and/or call, urgent); None when a concurrent pass wrote
    this level already (the key is the claim: the transport hands back its row, whose token differs)."""
    prof = target.professional
    key = f"page:{alert.id}:{target.level}"
    rows: list = []
    if target.channel in (PageChannel.SMS, PageChannel.BOTH):
        body = page_text(site_code=site_code, alert_id=alert.id, link=page_link(token),
                         can_reply=prof is not None, language=prof.language if prof else None)
        entry = enqueue_sms(to=target.phone, body=body, idempotency_key=key, purpose=PAGE_PURPOSE,
                            ref=f"alert:{alert.id}", priority=PRIORITY_URGENT)
        if entry.body != body:
            return None
        rows.append(entry)
    if target.channel in (PageChannel.VOICE, PageChannel.BOTH):
        path = voice_page_path(alert.id, target.level, token)
        entry = enqueue_call(to=target.phone, idempotency_key=key if not rows else key + ":call",
                             purpose=PAGE_PURPOSE, twiml_path=path, ref=f"alert:{alert.id}",
                             priority=PRIORITY_URGENT)
        if entry.twiml_path != path:
            return None
        rows.append(entry)
    return rows[0], (rows[1] if len(rows) > 1 else None)


def send_pages(items: list[tuple[Alert, Target, str]], *, kind: str, now: datetime) -> list[Target]:
    """Queue one page per (alert, target, site code) and record it; returns the targets paged.

    The outbox key ``page:<alert>:<level>`` is the claim: when it exists already (a concurrent
    pass paged that level), the transport hands back that row, recognised by its other
    token, and nothing is written for it. The pages, alert history and audit rows are then
    written together (a few statements for the whole batch).
    """
    db.session.flush()  # the caller's pending rows first, so the history keeps its order
    rows, done = [], []
    for alert, target, site_code in items:
        token = secrets.token_urlsafe(16)
        prof = target.professional
        try:
            queued = _queue_page(alert, target, token, site_code)
        except ValueError as exc:  # a number the transport refuses: logged, retried next pass
            log.error("alert %s could not be paged at level %s (%s)", alert.id, target.level, type(exc).__name__)
            continue
        if queued is None:
            continue  # paged already by a concurrent pass
        first, call = queued
        rows.append({"alert_id": alert.id, "level": target.level, "target": str(target.kind),
                     "professional_id": prof.id if prof else None, "phone": target.phone,
                     "channel": str(target.channel), "outbox_id": first.id,
                     "call_outbox_id": call.id if call is not None else None,
                     "sent_at": now, "token_digest": _digest(token)})
        done.append((alert, target))
    if not rows:
        return []
    db.session.execute(_page_insert(), rows)
    db.session.execute(insert(AlertAction), [
        {"alert_id": alert.id, "kind": kind, "at": now,
         "note": f"level {target.level}: {target.role}" + ("" if target.channel == PageChannel.SMS
                                                            else f" ({target.channel})")}
        for alert, target in done])
    for alert, target in done:
        alert.escalation_level = target.level
        audit.record("alert_" + kind, patient_id=alert.patient_id, obj=alert,
                     detail={"level": target.level, "target": str(target.kind), "channel": str(target.channel),
                             "professional_id": target.professional.id if target.professional else None})
    db.session.flush()
    return [target for _alert, target in done]


def page_for_new_alert(alert: Alert) -> Target | None:
    """Page level 0 of the site's chain about a new red alert (or an orange one out of hours), in
    the caller's transaction."""
    now = utcnow()
    context = site_contexts([alert.site_id], now)[alert.site_id]
    paged = send_pages([(alert, context.first_target(), context.code)], kind="paged", now=now)
    return paged[0] if paged else None


# --- acknowledgement -------------------------------------------------------------------------

@dataclass(frozen=True)
class _FallbackActor:
    """Whoever holds the fallback phone: acknowledges without an account."""

    id: None = None


def _acknowledge(page: AlertPage, alert: Alert, via: str, now: datetime) -> None:
    from .services import acknowledge

    prof = page.professional
    ip = audit.current_context().ip
    # The page identifies who acts: its professional, or whoever holds the fallback phone.
    ctx = AuditContext(prof.id, prof.email, ip) if prof else AuditContext(None, "fallback phone", ip)
    token = audit.set_context(ctx)
    try:
        acknowledge(alert, actor=prof or _FallbackActor(), note=f"page level {page.level} via {via}")
        page.acknowledged_at, page.acknowledged_via = now, via
        audit.record("page_acknowledged", patient_id=alert.patient_id, obj=page, detail={"via": via})
        db.session.flush()
    finally:
        audit.reset_context(token)


class LinkRefused(Exception):
    """The link is unknown (404) or no longer usable (410); ``reason`` is for the page shown."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def page_for_token(token: str, *, lock: bool = False) -> tuple[AlertPage, Alert]:
    """The page and alert a link stands for, if it may still acknowledge; else LinkRefused."""
    if not TOKEN_PATTERN.match(token or ""):
        raise LinkRefused(404, "unknown")
    query = select(AlertPage).where(AlertPage.token_digest == _digest(token))
    page = db.session.scalar(query.with_for_update() if lock else query)
    if page is None:
        raise LinkRefused(404, "unknown")
    alert = db.session.get(Alert, page.alert_id, with_for_update=lock)
    if page.acknowledged_at is not None:
        raise LinkRefused(410, "used")
    if utcnow() - page.sent_at > LINK_LIFETIME:
        raise LinkRefused(410, "expired")
    if alert.status != AlertStatus.OPEN:
        raise LinkRefused(410, "closed")
    if page.professional is not None and not page.professional.active:
        raise LinkRefused(410, "expired")
    return page, alert


def acknowledge_by_link(token: str) -> tuple[AlertPage, Alert]:
    page, alert = page_for_token(token, lock=True)
    _acknowledge(page, alert, AckVia.LINK, utcnow())
    return page, alert


def _relevant_pages(prof_ids: list[int], now: datetime) -> list[tuple[AlertPage, Alert]]:
    """This person's pages about alerts still open, or sent in the last 24 h; newest first."""
    return list(db.session.execute(
        select(AlertPage, Alert).join(Alert, Alert.id == AlertPage.alert_id)
        .where(AlertPage.professional_id.in_(prof_ids),
               or_(Alert.status == AlertStatus.OPEN, AlertPage.sent_at > now - LINK_LIFETIME))
        .order_by(AlertPage.sent_at.desc(), AlertPage.id.desc()).limit(50)).all())


def handle_professional_sms(from_number: str, body: str) -> list[str] | None:
    """Acknowledge a page by SMS ("OK 1234", "ok", "oui"); None when the message is not for us."""
    if batching.in_scope() and from_number not in batching.cached("professional_phones", lambda: set(
            db.session.scalars(select(Professional.phone).where(Professional.active.is_(True),
                                                                 Professional.phone.is_not(None))))):
        return None  # a batch of patients' answers: the active professionals' phones read once
    profs = list(db.session.scalars(select(Professional).where(
        Professional.phone == from_number, Professional.active.is_(True))))
    if not profs:
        return None
    now = utcnow()
    pages = _relevant_pages([p.id for p in profs], now)
    if not pages:
        return None  # a professional who is also a patient: the check-in engine answers
    waiting = [(p, a) for p, a in pages if p.acknowledged_at is None and a.status == AlertStatus.OPEN]
    match = _ACK.match(body or "")
    with force_locale(profs[0].language or "fr"):
        if match is None:
            if not waiting:
                return None
            return [_("To acknowledge the urgent alert, reply OK %(code)s.", code=waiting[0][1].id)]
        code = int(match.group(2)) if match.group(2) else None
        if code is not None:
            mine = [(p, a) for p, a in pages if a.id == code]
            if not mine:
                return [_("No alert %(code)s is waiting for you.", code=code)]
            candidates = [(p, a) for p, a in mine if (p, a) in waiting]
        else:
            candidates = waiting[:1]
        if not candidates:
            return [_("This alert was already acknowledged. Thank you.")]
        page, alert = candidates[0]
        alert = db.session.get(Alert, alert.id, with_for_update=True, populate_existing=True)
        if alert.status != AlertStatus.OPEN:
            return [_("This alert was already acknowledged. Thank you.")]
        _acknowledge(page, alert, AckVia.SMS, now)
        return [_("Alert %(code)s acknowledged. Thank you. Sign in to Onco'Link to see it.", code=alert.id)]
