"""Rota gaps told ahead: a gap in the next 72 hours is texted to the site's admins and
coordinating nurses, once a day per person (in the site's calendar) until it is filled.

The outbox key ``rota-gap:<site>:<person>:<site's date>`` makes the job safe to run as often as
wanted (hourly by the scheduler, or by hand): one text per person and day. Texts go out only
between ``NOTICE_HOURS`` in the site's time zone, never at night. The platform has no "lead
nurse" flag: every active coordinating nurse of the site with a mobile is told, with the site's
administrators (and the platform's, when the site has none). The text names the site and the
times only.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select

from app.care.models import Professional, Site
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.notifications.outbox import enqueue_sms, find_by_key
from app.notifications.segments import fits

from .oncall import GapWarning, upcoming_gap_warnings
from .oncall_channels import can_receive_sms

HORIZON_HOURS = 72
NOTICE_HOURS = (8, 21)  # local time: from 08:00 to 21:00


def _recipients(site_ids: list[int]) -> dict[int, list[Professional]]:
    """Per site: its coordinating nurses and admins with a mobile (platform admins for sites without one)."""
    people = list(db.session.scalars(select(Professional).where(
        Professional.active.is_(True), Professional.phone.is_not(None),
        or_(Professional.role == Role.ADMIN,
            (Professional.role == Role.COORDINATING_NURSE) & Professional.site_id.in_(site_ids)))
        .order_by(Professional.id)))
    people = [p for p in people if can_receive_sms(p.phone)]
    platform_admins = [p for p in people if p.role == Role.ADMIN and p.site_id is None]
    out = {}
    for sid in site_ids:
        mine = [p for p in people if p.site_id == sid]
        if not any(p.role == Role.ADMIN for p in mine):
            mine += platform_admins
        out[sid] = mine
    return out


def gap_text(site: Site, gaps: list[GapWarning], language: str | None) -> str:
    zone = ZoneInfo(site.timezone)
    locale = language or current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    first = gaps[0]

    def local(value: datetime) -> str:
        # Numeric dates: month names may hold characters outside GSM-7 ("août"), doubling the segments.
        return format_datetime(value.astimezone(zone), "EEE dd/MM HH:mm", locale=locale)

    with force_locale(locale):
        text = _("Onco'Link %(site)s: nobody is on call from %(start)s to %(end)s. Red alerts would go to the "
                 "fallback number. Please complete the rota.", site=site.code, start=local(first.starts_at),
                 end=local(first.ends_at))
        if len(gaps) > 1:
            text += " " + _("(%(n)s other gaps in the next 72 hours)", n=len(gaps) - 1)
        if not fits(text, 2):
            text = _("Onco'Link %(site)s: gaps in the on-call rota in the next 72 hours. Please complete it.",
                     site=site.code)
    return text


def notify_gaps(now: datetime | None = None) -> dict:
    """Queue today's gap notices (flushed, not committed): {sites with gaps, texts queued}."""
    now = now or utcnow()
    sites = list(db.session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.id)))
    warnings: dict[int, list[GapWarning]] = {}
    for gap in upcoming_gap_warnings([s.id for s in sites], HORIZON_HOURS, now=now):
        warnings.setdefault(gap.site_id, []).append(gap)
    if not warnings:
        return {"sites": 0, "queued": 0}
    recipients = _recipients(sorted(warnings))
    queued = 0
    for site in sites:
        gaps = warnings.get(site.id)
        if not gaps:
            continue
        local_now = now.astimezone(ZoneInfo(site.timezone))
        if not NOTICE_HOURS[0] <= local_now.hour < NOTICE_HOURS[1]:
            continue  # nobody is texted at night: the next run in the day does it
        for person in recipients[site.id]:
            key = f"rota-gap:{site.id}:{person.id}:{local_now.date().isoformat()}"
            if find_by_key(key) is not None:
                continue  # told today already
            enqueue_sms(to=person.phone, body=gap_text(site, gaps, person.language), idempotency_key=key,
                        purpose="rota_gap", ref=f"rota-gap:{site.id}:{local_now.date().isoformat()}")
            queued += 1
    return {"sites": len(warnings), "queued": queued}
