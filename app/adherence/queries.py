"""Bulk reads for the adherence measures: a handful of statements per batch of patients,
whatever the batch size (never one query per patient)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    Date,
    Integer,
    Text,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    text,
    true,
    type_coerce,
)

from app.care.models import Patient, PatientStatus
from app.extensions import db
from app.pathways.checkins.models import Answer
from app.pathways.models import Drug, Prescription, PrescriptionEvent
from app.triage.models import Alert, AlertStatus

from .compute import AnswerStats, DispensingRow, EventRow, PatientInputs, RxRow
from .findings import REASON_CODES
from .models import AdherenceReport, Dispensing, Window

DOSES_MISSED = "doses_missed"
DOSE_IN_BREAK = "dose_in_break"
ALERT_SOURCE = "adherence"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def active_patient_ids() -> list[int]:
    """Patients followed at home today (paused, hospitalised and ended ones are left alone)."""
    return list(db.session.scalars(
        select(Patient.id).where(Patient.status == PatientStatus.ACTIVE).order_by(Patient.id)))


def lock_patients(patient_ids: Sequence[int]) -> None:
    """Serialise the recomputes and dispensings of these patients (PostgreSQL row locks, taken in
    id order; on SQLite the transaction's BEGIN IMMEDIATE already holds the write lock)."""
    if db.session.get_bind().dialect.name == "postgresql" and patient_ids:
        # One array parameter, not one bound value per patient (a nightly batch locks 5,000).
        db.session.execute(text("SELECT id FROM patient WHERE id = ANY(CAST(:ids AS integer[])) "
                                "ORDER BY id FOR UPDATE"), {"ids": list(patient_ids)})


def load_inputs(patient_ids: Sequence[int], as_of: date,
                answers: dict[int, dict[str, AnswerStats]] | None = None) -> dict[int, PatientInputs]:
    """Prescriptions, events, dispensings, answer aggregates and reports of these patients
    (``answers``: the aggregates already read for them)."""
    wanted = set(patient_ids)
    out = {pid: PatientInputs() for pid in wanted}
    if not wanted:
        return out
    lo, hi = min(wanted), max(wanted)
    sparse = len(wanted) * 2 < hi - lo + 1

    def in_range(column):
        if lo == hi:
            return column == lo
        # A dense batch reads an id range; a scattered one its ids (never the rows in between).
        return column.in_(sorted(wanted)) if sparse else column.between(lo, hi)

    for row in db.session.execute(
        select(Prescription.patient_id, Prescription.id, Prescription.drug_id, Drug.inn, Prescription.dose,
               Prescription.frequency_per_day, Prescription.days_on, Prescription.days_off,
               Prescription.start_date, Prescription.end_date)
        .join(Drug, Drug.id == Prescription.drug_id).where(in_range(Prescription.patient_id))
        .where(Prescription.start_date <= as_of)
    ):
        if row[0] in wanted:
            out[row[0]].prescriptions.append(RxRow(*row[1:]))
    for row in db.session.execute(
        select(Prescription.patient_id, PrescriptionEvent.prescription_id, PrescriptionEvent.kind,
               PrescriptionEvent.effective_date, PrescriptionEvent.new_dose)
        .join(Prescription, Prescription.id == PrescriptionEvent.prescription_id)
        .where(in_range(Prescription.patient_id), PrescriptionEvent.effective_date <= as_of)
        .order_by(PrescriptionEvent.effective_date, PrescriptionEvent.id)
    ):
        if row[0] in wanted:
            out[row[0]].events.append(EventRow(*row[1:]))
    for pid, drug_id, day, days in db.session.execute(
        select(Dispensing.patient_id, Dispensing.drug_id, Dispensing.dispensed_on, Dispensing.days_supply)
        .where(in_range(Dispensing.patient_id), Dispensing.dispensed_on <= as_of)
    ):
        if pid in wanted:
            out[pid].dispensings.append(DispensingRow(drug_id, day, days))
    for pid, day, assessment in db.session.execute(
        select(AdherenceReport.patient_id, AdherenceReport.reported_on, AdherenceReport.assessment)
        .where(in_range(AdherenceReport.patient_id), AdherenceReport.reported_on <= as_of)
        .order_by(AdherenceReport.reported_on, AdherenceReport.id)
    ):
        if pid in wanted:
            out[pid].reports.append((day, assessment))
    if answers is None:
        answers = answer_stats(as_of, in_range(Answer.patient_id))
    for pid in wanted:
        out[pid].answers = answers.get(pid, {})
    return out


def _utc_day(column, dialect: str):
    """The UTC calendar day of a timestamp column, as a date."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return type_coerce(func.date(column), Date)  # SQLite keeps naive UTC text


def answer_stats(as_of: date, where=None) -> dict[int, dict[str, AnswerStats]]:
    """Per patient and window: the count, sum, first and last days of the ``doses_missed``
    answers, the day of the last one before the window, and the "yes" to ``dose_in_break``.

    One grouped statement: each answer falls in one age bucket (the last 30 days, 31-90 days,
    older) and a handful of plain aggregates run per patient and bucket; the windows are sums
    of buckets, the answer "before" a window the latest of the older buckets.
    """
    at = Answer.answered_at
    since_30, since_90 = _midnight(as_of - timedelta(days=29)), _midnight(as_of - timedelta(days=89))
    bucket = case((at >= since_30, 0), (at >= since_90, 1), else_=2).label("bucket")
    missed = Answer.item_code == DOSES_MISSED
    # FILTER, not a CASE in each aggregate (cheaper per row); the filter runs before the
    # argument, so a "yes" to another item never reaches the cast to an integer.
    dialect = db.session.get_bind().dialect.name
    in_break = and_(Answer.item_code == DOSE_IN_BREAK, cast(Answer.value, Text) == "true")
    rows = db.session.execute(
        select(Answer.patient_id, bucket, func.count().filter(missed),
               func.sum(cast(cast(Answer.value, Text), Integer)).filter(missed),
               _utc_day(func.min(at).filter(missed), dialect), _utc_day(func.max(at).filter(missed), dialect),
               func.count().filter(in_break))
        .where(true() if where is None else where, Answer.parsed.is_(True),
               Answer.item_code.in_((DOSES_MISSED, DOSE_IN_BREAK)), at < _midnight(as_of + timedelta(days=1)))
        .group_by(Answer.patient_id, bucket)
    )
    buckets: dict[int, list] = {}
    for pid, b, n, total, first, last, breaks in rows:
        parts = buckets.get(pid)
        if parts is None:
            parts = buckets[pid] = [None, None, None]
        parts[b] = (n or 0, int(total or 0), first, last, int(breaks or 0))
    return {pid: _windows(parts) for pid, parts in buckets.items()}


_EMPTY = (0, 0, None, None, 0)
_W30, _W90, _WSTART = Window.DAYS_30.value, Window.DAYS_90.value, Window.START.value  # looked up once


def _windows(parts: list) -> dict[str, AnswerStats]:
    recent, middle, old = (p or _EMPTY for p in parts)
    first_90 = middle[2] if middle[2] is not None else recent[2]
    last_90 = recent[3] if recent[3] is not None else middle[3]
    return {
        _W30: AnswerStats(recent[0], recent[1], recent[2], recent[3],
                          middle[3] if middle[3] is not None else old[3], recent[4]),
        _W90: AnswerStats(recent[0] + middle[0], recent[1] + middle[1], first_90, last_90, old[3],
                          recent[4] + middle[4]),
        _WSTART: AnswerStats(recent[0] + middle[0] + old[0], recent[1] + middle[1] + old[1],
                             old[2] if old[2] is not None else first_90,
                             last_90 if last_90 is not None else old[3], None, recent[4] + middle[4] + old[4]),
    }


def recent_adherence_alerts(patient_ids: Sequence[int] | None, now: datetime,
                            cooldown_days: int) -> set[tuple[int, str]]:
    """(patient, reason) pairs that must not be raised again: an alert still open (or
    acknowledged), or one resolved less than ``cooldown_days`` ago (``None``: every patient)."""
    if patient_ids is not None and not patient_ids:
        return set()
    scope = true() if patient_ids is None else Alert.patient_id.between(min(patient_ids), max(patient_ids))
    rows = db.session.execute(
        select(Alert.patient_id, Alert.reason_code).where(
            scope, Alert.source == ALERT_SOURCE, Alert.reason_code.in_(REASON_CODES),
            or_(Alert.status != AlertStatus.RESOLVED, Alert.resolved_at >= now - timedelta(days=cooldown_days)),
        ))
    return {(pid, reason) for pid, reason in rows}
