"""Working time of a site, and what an orange alert that told the patient to do something (e.g.
"pause the treatment until the nurse calls") does outside it.

A site works Monday to Friday from ``workday_start`` to ``workday_end`` in its time zone, except
on its public holidays (the ``holidays`` library: France by default, a subdivision such as "57"
for Moselle adds its own days). An orange alert with an instruction raised outside that time
pages the on-call chain at once when the site's policy says "page" (the default), because the
patient has been told to wait for a call that no nurse would otherwise make before the next
working day; with "wait" it keeps its working-hours deadline.
"""
from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from flask_babel import gettext as _

from .models import Severity
from .oncall import OutOfHours, Policy


@functools.lru_cache(maxsize=64)
def holiday_calendar(country: str = "FR", subdivision: str | None = None) -> holidays.HolidayBase:
    """The public holidays of a country (and subdivision), any year (filled in on first use)."""
    return holidays.country_holidays(country or "FR", subdiv=subdivision or None)


def holiday_calendar_error(country: str, subdivision: str | None) -> str | None:
    """Why this country / subdivision has no holiday calendar (for the policy form), or None."""
    try:
        holiday_calendar(country, subdivision)
    except NotImplementedError:
        if subdivision:
            return _("Unknown subdivision for this country (for France: e.g. 57, 67, 68, 971).")
        return _("Unknown country: give its two-letter code, e.g. FR.")
    return None


def closed_on(policy: Policy) -> holidays.HolidayBase:
    return holiday_calendar(policy.holiday_country, policy.holiday_subdivision)


def is_working_time(when: datetime, *, tz_name: str, day_start: int, day_end: int,
                    closed: holidays.HolidayBase | frozenset[date] = frozenset()) -> bool:
    """True on a working day (Monday to Friday, not a holiday) between the opening hours."""
    local = when.astimezone(ZoneInfo(tz_name or "Europe/Paris"))
    if local.weekday() >= 5 or local.date() in closed:
        return False
    opening = local.replace(hour=day_start, minute=0, second=0, microsecond=0)
    return opening <= local < opening + timedelta(hours=day_end - day_start)


def pages_out_of_hours(*, severity: str, detail: dict | None, policy: Policy, tz_name: str, now: datetime) -> bool:
    """Whether a new alert pages the on-call chain because it is out of hours (see the module)."""
    if severity != Severity.ORANGE or not (detail or {}).get("instruction"):
        return False
    if policy.out_of_hours_orange != OutOfHours.PAGE:
        return False
    return not is_working_time(now, tz_name=tz_name, day_start=policy.workday_start, day_end=policy.workday_end,
                               closed=closed_on(policy))


def should_page(alert, now: datetime) -> bool:
    """``pages_out_of_hours`` for an alert just raised (its site's policy and time zone)."""
    if alert.severity != Severity.ORANGE or not (alert.detail or {}).get("instruction"):
        return False  # the common case, without a query
    from app.care.models import Site
    from app.extensions import db

    from .oncall import effective_policy

    site = db.session.get(Site, alert.site_id)
    return pages_out_of_hours(severity=alert.severity, detail=alert.detail, policy=effective_policy(alert.site_id),
                              tz_name=site.timezone, now=now)
