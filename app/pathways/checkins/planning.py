"""When each patient is asked: one check-in per follow-up period, at their local day and hour.

Periods: one ISO week in S1/S2; ``site.s3_followup_weeks`` weeks in S3, counted from the ISO
week in which S3 started. The slot is the patient's weekday and hour of the period's first week,
in the patient's time zone, converted to UTC with ``fold=0``: a local time skipped by the spring
change (02:30 Europe/Paris) lands on the same instant as 03:30 summer time, and a time that happens
twice in autumn is the first occurrence, so each DST Sunday has exactly one check-in. The period
key is the local ISO week of the slot ("2027-W13"): at most one check-in per patient and week,
whatever the sequence, enforced by a unique constraint and inserted with ON CONFLICT DO NOTHING
so two planners running at once never duplicate a check-in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite

from app.care.models import Patient, PatientStatus, Site
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Enrolment, EnrolmentStatus, Sequence

from .models import CheckIn, CheckInStatus

log = logging.getLogger("oncolink.checkins")


@dataclass(frozen=True)
class Slot:
    period_key: str
    scheduled_at: datetime  # UTC
    closes_at: datetime  # UTC: the next period's slot
    local_date: date


def local_to_utc(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time (``fold=0``: see the module docstring)."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(timezone.utc)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Europe/Paris")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Paris")


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def period_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def period_weeks(sequence: str, s3_weeks: int | None) -> int:
    return int(s3_weeks or 2) if sequence == Sequence.S3 else 1


def period_monday(week_monday: date, *, weeks: int, anchor: date) -> date:
    """First Monday of the period containing ``week_monday`` (periods of ``weeks`` weeks from ``anchor``)."""
    if weeks == 1:
        return week_monday
    anchor_monday = monday_of(anchor)
    index = max(0, (week_monday - anchor_monday).days // 7) // weeks
    return anchor_monday + timedelta(weeks=index * weeks)


def slot_in(first_monday: date, *, weeks: int, weekday: int, hour: int, tz: ZoneInfo,
            minute: int = 0) -> Slot:
    day = first_monday + timedelta(days=weekday)
    next_day = day + timedelta(weeks=weeks)
    return Slot(period_key(day), local_to_utc(day, hour, minute, tz), local_to_utc(next_day, hour, minute, tz), day)


def slots_due(now: datetime, *, tz_name: str, weekday: int, hour: int, sequence: str, s3_weeks: int | None,
              starts_on: date, horizon: timedelta, minute: int = 0) -> list[Slot]:
    """The current period's slot and the next one when it falls within ``horizon``; never a slot
    before ``starts_on`` (the patient was not followed yet)."""
    tz = zone(tz_name)
    weeks = period_weeks(sequence, s3_weeks)
    current = period_monday(monday_of(now.astimezone(tz).date()), weeks=weeks, anchor=starts_on)
    slots = [slot_in(current, weeks=weeks, weekday=weekday, hour=hour, tz=tz, minute=minute)]
    upcoming = slot_in(current + timedelta(weeks=weeks), weeks=weeks, weekday=weekday, hour=hour, tz=tz,
                       minute=minute)
    if upcoming.scheduled_at <= now + horizon:
        slots.append(upcoming)
    return [s for s in slots if s.local_date >= starts_on and s.closes_at > now]


def eligible_patients():
    """Patients who are asked: active, consenting, not opted out, with an active enrolment."""
    return and_(
        Patient.status == PatientStatus.ACTIVE,
        Patient.consent_given.is_(True),
        Patient.opted_out_at.is_(None),
        Enrolment.active_patient_id == Patient.id,
        Enrolment.status == EnrolmentStatus.ACTIVE,
    )


def _insert(rows: list[dict]) -> int:
    if not rows:
        return 0
    table = CheckIn.__table__
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=["patient_id", "period_key"])
    return len(db.session.execute(stmt.returning(table.c.id), rows).all())


def _close_cap(slot: Slot) -> datetime:
    hours = current_app.config.get("CHECKIN_CLOSE_HOURS")
    if hours:
        return min(slot.closes_at, slot.scheduled_at + timedelta(hours=hours))
    return slot.closes_at


def plan_checkins(now: datetime | None = None) -> dict:
    """Create the due check-ins of every eligible patient, a batch at a time (one query per batch)."""
    now = now or utcnow()
    horizon = timedelta(hours=current_app.config.get("CHECKIN_PLAN_HORIZON_HOURS", 48))
    batch_size = current_app.config.get("CHECKIN_BATCH_SIZE", 500)
    last_id, patients, planned, batches = 0, 0, 0, 0
    while True:
        batch = db.session.execute(
            select(Patient.id, Patient.timezone, Patient.checkin_weekday, Patient.checkin_hour,
                   Patient.channel, Enrolment.sequence, Enrolment.started_on, Enrolment.sequence_started_on,
                   Site.s3_followup_weeks)
            .join(Enrolment, Enrolment.active_patient_id == Patient.id)
            .join(Site, Site.id == Patient.site_id)
            .where(eligible_patients(), Patient.id > last_id)
            .order_by(Patient.id)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        rows = []
        for p in batch:
            starts_on = p.sequence_started_on if p.sequence == Sequence.S3 else p.started_on
            for slot in slots_due(now, tz_name=p.timezone, weekday=p.checkin_weekday, hour=p.checkin_hour,
                                  sequence=p.sequence, s3_weeks=p.s3_followup_weeks, starts_on=starts_on,
                                  horizon=horizon):
                rows.append(dict(
                    patient_id=p.id, period_key=slot.period_key, sequence=p.sequence,
                    scheduled_at=slot.scheduled_at, closes_at=_close_cap(slot), channel=p.channel,
                    status=CheckInStatus.SCHEDULED, current_index=0, reask_count=0, call_attempts=0,
                    created_at=now, updated_at=now,
                ))
        planned += _insert(rows)
        db.session.commit()
        patients += len(batch)
        batches += 1
        last_id = batch[-1].id
    log.info("check-ins planned: %s for %s patients", planned, patients)
    return {"patients": patients, "planned": planned, "batches": batches}
