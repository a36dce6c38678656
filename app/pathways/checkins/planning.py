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
from sqlalchemy import and_, select, text
from sqlalchemy.dialects import sqlite

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


def period_slots(now: datetime, *, tz_name: str, weekday: int, hour: int, weeks: int,
                 anchor_monday: date | None, horizon: timedelta, minute: int = 0) -> tuple[Slot, ...]:
    """The current period's slot and the next one when it falls within ``horizon``, open at ``now``.

    Depends only on these arguments (the anchor only when ``weeks > 1``), so patients who share
    them share the result: the planner computes it once per distinct pattern, not per patient."""
    tz = zone(tz_name)
    week_monday = monday_of(now.astimezone(tz).date())
    current = period_monday(week_monday, weeks=weeks, anchor=anchor_monday or week_monday)
    slots = [slot_in(current, weeks=weeks, weekday=weekday, hour=hour, tz=tz, minute=minute)]
    upcoming = slot_in(current + timedelta(weeks=weeks), weeks=weeks, weekday=weekday, hour=hour, tz=tz,
                       minute=minute)
    if upcoming.scheduled_at <= now + horizon:
        slots.append(upcoming)
    return tuple(s for s in slots if s.closes_at > now)


def slots_due(now: datetime, *, tz_name: str, weekday: int, hour: int, sequence: str, s3_weeks: int | None,
              starts_on: date, horizon: timedelta, minute: int = 0) -> list[Slot]:
    """The current period's slot and the next one when it falls within ``horizon``; never a slot
    before ``starts_on`` (the patient was not followed yet)."""
    weeks = period_weeks(sequence, s3_weeks)
    slots = period_slots(now, tz_name=tz_name, weekday=weekday, hour=hour, weeks=weeks,
                         anchor_monday=monday_of(starts_on) if weeks > 1 else None, horizon=horizon,
                         minute=minute)
    return [s for s in slots if s.local_date >= starts_on]


def _close_cap(slot: Slot, hours: int | None) -> datetime:
    if hours:
        return min(slot.closes_at, slot.scheduled_at + timedelta(hours=hours))
    return slot.closes_at


def eligible_patients():
    """Patients who are asked: active, consenting, not opted out, with an active enrolment."""
    return and_(
        Patient.status == PatientStatus.ACTIVE,
        Patient.consent_given.is_(True),
        Patient.opted_out_at.is_(None),
        Enrolment.active_patient_id == Patient.id,
        Enrolment.status == EnrolmentStatus.ACTIVE,
    )


_PG_INSERT = text("""
    INSERT INTO checkin (patient_id, period_key, sequence, scheduled_at, closes_at, channel,
                         status, current_index, reask_count, call_attempts, created_at, updated_at)
    SELECT patient_id, period_key, sequence, scheduled_at, closes_at, channel,
           :status, 0, 0, 0, :now, :now
    FROM unnest(CAST(:patient_id AS integer[]), CAST(:period_key AS varchar[]),
                CAST(:sequence AS varchar[]), CAST(:scheduled_at AS timestamptz[]),
                CAST(:closes_at AS timestamptz[]), CAST(:channel AS varchar[]))
         AS t(patient_id, period_key, sequence, scheduled_at, closes_at, channel)
    ON CONFLICT (patient_id, period_key) DO NOTHING
""")
_COLUMNS = ("patient_id", "period_key", "sequence", "scheduled_at", "closes_at", "channel")


def _insert(rows: list[tuple], now: datetime) -> int:
    """Insert (patient_id, period_key, sequence, scheduled_at, closes_at, channel) rows, skipping
    a (patient, period) that exists; returns how many were inserted.

    PostgreSQL gets one statement over arrays (``unnest``): a short query whatever the batch size
    (a multi-row VALUES of thousands of parameters cost more to build and parse than to run).
    SQLite gets a multi-row INSERT."""
    if not rows:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        params = dict(zip(_COLUMNS, (list(column) for column in zip(*rows))))
        return db.session.execute(_PG_INSERT, {**params, "status": CheckInStatus.SCHEDULED, "now": now}).rowcount
    table = CheckIn.__table__
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["patient_id", "period_key"])
    values = [dict(zip(_COLUMNS, row), status=CheckInStatus.SCHEDULED, current_index=0, reask_count=0,
                   call_attempts=0, created_at=now, updated_at=now) for row in rows]
    return len(db.session.execute(stmt.returning(table.c.id), values).all())


def _existing_keys(first_id: int, last_id: int, from_key: str) -> set[tuple[int, str]]:
    """(patient, period) pairs already planned for patients ``first_id``..``last_id`` from
    period ``from_key`` on (keys sort as text: "2027-W09" < "2027-W10" < "2028-W01"): a range
    scan of the unique (patient_id, period_key) index."""
    rows = db.session.execute(
        select(CheckIn.patient_id, CheckIn.period_key)
        .where(CheckIn.patient_id.between(first_id, last_id), CheckIn.period_key >= from_key))
    return {(patient_id, key) for patient_id, key in rows}


def plan_checkins(now: datetime | None = None) -> dict:
    """Create the due check-ins of every eligible patient, a batch at a time.

    Per batch: one keyset SELECT of the eligible patients, the slots of each (computed once per
    pattern of time zone, weekday, hour, period length and anchor), one SELECT of the pairs already
    planned, and one INSERT of the missing pairs only. A re-run therefore inserts nothing and
    sends no INSERT; ON CONFLICT DO NOTHING still guards against a planner running at once."""
    now = now or utcnow()
    horizon = timedelta(hours=current_app.config.get("CHECKIN_PLAN_HORIZON_HOURS", 48))
    batch_size = current_app.config.get("CHECKIN_BATCH_SIZE", 500)
    close_hours = current_app.config.get("CHECKIN_CLOSE_HOURS")
    patterns: dict[tuple, tuple[tuple[Slot, datetime], ...]] = {}

    def slots_of(tz_name: str, weekday: int, hour: int, weeks: int, anchor_monday: date | None):
        key = (tz_name, weekday, hour, weeks, anchor_monday)
        found = patterns.get(key)
        if found is None:
            slots = period_slots(now, tz_name=tz_name, weekday=weekday, hour=hour, weeks=weeks,
                                 anchor_monday=anchor_monday, horizon=horizon)
            found = patterns[key] = tuple((slot, _close_cap(slot, close_hours)) for slot in slots)
        return found

    last_id, patients, planned, batches, skipped = 0, 0, 0, 0, 0
    while True:
        batch = db.session.execute(
            select(Patient.id, Patient.timezone, Patient.checkin_weekday, Patient.checkin_hour,
                   Patient.channel, Enrolment.sequence, Enrolment.started_on, Enrolment.sequence_started_on,
                   Site.s3_followup_weeks)
            .join(Enrolment, Enrolment.active_patient_id == Patient.id)
            .join(Site, Site.id == Patient.site_id)
            # The bound on both sides of the join: PostgreSQL does not carry an inequality across
            # it and would otherwise merge-join from the first enrolment on every batch.
            .where(eligible_patients(), Patient.id > last_id, Enrolment.active_patient_id > last_id)
            .order_by(Patient.id)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        due = []
        for p in batch:
            s3 = p.sequence == Sequence.S3
            starts_on = p.sequence_started_on if s3 else p.started_on
            weeks = period_weeks(p.sequence, p.s3_followup_weeks)
            for slot, closes_at in slots_of(p.timezone, p.checkin_weekday, p.checkin_hour, weeks,
                                            monday_of(starts_on) if weeks > 1 else None):
                if slot.local_date >= starts_on:
                    due.append((p.id, slot.period_key, p.sequence, slot.scheduled_at, closes_at, p.channel))
        if due:
            existing = _existing_keys(batch[0].id, batch[-1].id, min(row[1] for row in due))
            rows = [row for row in due if (row[0], row[1]) not in existing]
            skipped += len(due) - len(rows)
            planned += _insert(rows, now)
        db.session.commit()
        patients += len(batch)
        batches += 1
        last_id = batch[-1].id
    log.info("check-ins planned: %s for %s patients (%s already planned)", planned, patients, skipped)
    return {"patients": patients, "planned": planned, "batches": batches, "already_planned": skipped}
