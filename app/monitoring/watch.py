"""The platform reports its own faults: a health check (those behind ``GET /healthz``) that fails
for longer than a technical contact's delay is told to that contact, once per incident, and the
all-clear is told when it passes again.

``watch_once`` is run from a process that is not the one that may have failed: ``flask health
watch`` from cron on another host (or ``--every 30`` beside a standby scheduler), and the
``watch-platform`` job of the active scheduler (which sees every fault but its own death). Each
run reads the checks (iterating over them: a check added to ``app.web.health.CHECKS`` is watched
too), records the incidents (``platform_fault``: one open row per failing check, so two watchers
at once share it), writes the reports to the outbox's urgent lane with one key per incident and
contact (``fault:<incident>:<phone>``, ``fault-clear:...``: at most once each, whoever runs), commits,
then sends the urgent lane itself: a stopped scheduler cannot stop its own fault report.

Contacts: each site's technical contact (its escalation policy: phone, SMS / voice / both, delay)
and the platform's (``PLATFORM_TECH_CONTACT_*``); one number told once, at the shortest delay.
Texts name the check and times only. When the database itself is down nothing can be recorded:
the run says so and exits 1 (cron mails it); the external monitor on ``/healthz`` covers that case.
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.time import utcnow
from app.extensions import db
from app.notifications.outbox import PRIORITY_URGENT, enqueue_call, enqueue_sms, find_by_key
from app.notifications.segments import fits

from .models import PlatformFault

log = logging.getLogger("oncolink.monitoring")

CHECK_LABELS = {
    "database": _l("the database does not answer"),
    "scheduler": _l("no scheduler is running (check-ins, answers and pages are stopped)"),
    "inbound_queue": _l("patients' text messages are not being read"),
    "outbox": _l("due messages are not leaving"),
    "dispatcher": _l("the message dispatcher is failing"),
    "send_errors": _l("many messages fail to be sent"),
    "spool": _l("inbound messages wait in the local spool"),
}
VOICE_PREFIX = "/webhooks/twilio/fault"


@dataclass(frozen=True)
class Contact:
    phone: str
    channel: str  # sms, voice or both
    delay: timedelta


def contacts() -> list[Contact]:
    """Every technical contact, once per number, at its shortest delay."""
    from app.triage.oncall import EscalationPolicy

    config = current_app.config
    found: dict[str, Contact] = {}
    rows = [(p.tech_contact_phone, p.tech_contact_channel, p.fault_delay_minutes)
            for p in db.session.scalars(select(EscalationPolicy).where(EscalationPolicy.tech_contact_phone.is_not(None)))]
    if config.get("PLATFORM_TECH_CONTACT_PHONE"):
        rows.append((config["PLATFORM_TECH_CONTACT_PHONE"], config.get("PLATFORM_TECH_CONTACT_CHANNEL") or "sms",
                     int(config.get("PLATFORM_FAULT_DELAY_MINUTES") or 5)))
    for phone, channel, minutes in rows:
        contact = Contact(phone, channel, timedelta(minutes=minutes))
        if phone not in found or contact.delay < found[phone].delay:
            found[phone] = contact
    return sorted(found.values(), key=lambda c: c.phone)


def _local(when: datetime) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(current_app.config.get("DEFAULT_TIMEZONE", "Europe/Paris"))
    return when.astimezone(zone).strftime("%d/%m %H:%M")


def fault_text(fault: PlatformFault, *, cleared: bool) -> str:
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")):
        label = str(CHECK_LABELS.get(fault.check_name, fault.check_name))
        if cleared:
            text = _("Onco'Link back to normal: %(check)s (fault from %(start)s to %(end)s).", check=label,
                     start=_local(fault.started_at), end=_local(fault.cleared_at))
        else:
            text = _("Onco'Link platform fault since %(start)s: %(check)s. Reported from %(host)s.",
                     start=_local(fault.started_at), check=label, host=socket.gethostname()[:30])
    # Within two segments whatever the host name or a translation's accents: the check's name then.
    return text if fits(text, 2) else f"Onco'Link: {'OK' if cleared else 'FAULT'} {fault.check_name} " \
        f"{_local(fault.started_at)}"


def _voice_path(fault_id: int, cleared: bool) -> str:
    from itsdangerous import URLSafeSerializer

    signed = URLSafeSerializer(current_app.config["SECRET_KEY"], salt="oncolink-fault-voice").dumps(
        [fault_id, int(cleared)])
    return f"{VOICE_PREFIX}/{signed}"


def _tell(fault: PlatformFault, contact: Contact, *, cleared: bool) -> bool:
    """Queue the report (or all-clear) of ``fault`` to ``contact`` once; True when queued now."""
    key = f"{'fault-clear' if cleared else 'fault'}:{fault.id}:{contact.phone}"
    if find_by_key(key) is not None:
        return False
    common = dict(purpose="platform_fault", ref=f"fault:{fault.id}", priority=PRIORITY_URGENT)
    if contact.channel in ("sms", "both"):
        enqueue_sms(to=contact.phone, body=fault_text(fault, cleared=cleared), idempotency_key=key, **common)
    if contact.channel in ("voice", "both"):
        enqueue_call(to=contact.phone, twiml_path=_voice_path(fault.id, cleared),
                     idempotency_key=key if contact.channel == "voice" else key + ":call", **common)
    return True


def _open_fault(name: str, now: datetime) -> PlatformFault:
    fault = db.session.scalar(select(PlatformFault).where(PlatformFault.check_name == name,
                                                          PlatformFault.cleared_at.is_(None)).with_for_update())
    if fault is not None:
        fault.last_seen_at = now
        return fault
    try:
        with db.session.begin_nested():  # a concurrent watcher may open it at the same time
            fault = PlatformFault(check_name=name, started_at=now, last_seen_at=now)
            db.session.add(fault)
    except IntegrityError:
        fault = db.session.scalar(select(PlatformFault).where(PlatformFault.check_name == name,
                                                              PlatformFault.cleared_at.is_(None)))
    return fault


def record(checks: dict[str, bool], now: datetime) -> dict:
    """Open, update and close incidents for these check results and queue the reports due (flushed,
    not committed): {failing, reported, cleared}."""
    told = cleared = 0
    people = contacts()
    for name, ok in checks.items():
        if not ok:
            fault = _open_fault(name, now)
            for contact in people:
                if now - fault.started_at >= contact.delay and _tell(fault, contact, cleared=False):
                    told += 1
                    fault.notified_at = fault.notified_at or now
                    log.warning("platform fault %s reported to a technical contact", name)
            continue
        fault = db.session.scalar(select(PlatformFault).where(PlatformFault.check_name == name,
                                                              PlatformFault.cleared_at.is_(None)).with_for_update())
        if fault is None:
            continue
        fault.cleared_at = now
        for contact in people:
            if find_by_key(f"fault:{fault.id}:{contact.phone}") is not None and _tell(fault, contact, cleared=True):
                cleared += 1
        log.info("platform fault %s cleared", name)
    db.session.flush()
    return {"failing": sorted(n for n, ok in checks.items() if not ok), "reported": told, "all_clear": cleared}


def watch_once(now: datetime | None = None, *, send: bool = True) -> dict:
    """One look at the platform (see the module); commits, then sends the urgent lane from here."""
    from app.web.health import platform_health

    now = now or utcnow()
    health = platform_health(now)
    checks = health["checks"]
    if not checks.get("database", True):
        return {"failing": ["database"], "reported": 0, "all_clear": 0, "recorded": False}
    try:
        result = record(checks, now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if send and (result["reported"] or result["all_clear"]):
        from app.notifications.tasks import dispatch_outbox

        result["sent"] = dispatch_outbox(urgent_only=True, time_budget_s=20)["sent"]
    return result
