"""Recording dispensings and adherence reports, and recomputing a patient's adherence.

Services take plain arguments, flush but never commit, and raise ``ValidationFailed``. Every
change of a patient's adherence goes through ``lock_patients`` first, so two pharmacists (or a
pharmacist and the nightly job, or a check-in answer) never compute from stale rows: PostgreSQL
takes the patient's row lock, SQLite's BEGIN IMMEDIATE already serialises the writers.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.care.models import Patient, PatientStatus, Professional
from app.core import audit
from app.core.errors import Conflict, ValidationFailed
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Drug, Prescription
from app.triage.services import NewAlert, raise_alerts

from .compute import SNAPSHOT_COLUMNS, PatientMeasures, evaluate, measure_supply
from .findings import Finding, Settings
from .measures import Supply, refill_check
from .models import AdherenceReport, AdherenceSnapshot, Assessment, Dispensing
from .queries import ALERT_SOURCE, load_inputs, lock_patients, recent_adherence_alerts
from .regimen import DOSE_CHANGE, parse_mg, parse_percent

MAX_DAYS_SUPPLY = 366


@dataclass(frozen=True)
class DispensingWarning:
    code: str  # duplicate, not_prescribed, early_refill, late_refill, quantity_mismatch
    message: str
    needs_confirmation: bool = False


class NeedsConfirmation(Conflict):
    """The dispensing looks like a mistake (recorded twice, drug not prescribed): nothing was
    written; the caller shows ``warnings`` and asks the pharmacist to confirm."""

    def __init__(self, warnings: list[DispensingWarning]):
        self.warnings = warnings
        super().__init__("; ".join(w.code for w in warnings))

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.warnings if w.needs_confirmation]


def settings() -> Settings:
    return Settings.from_config(current_app.config)


# --- What the prescription says on a day --------------------------------------------------------

def dose_mg_on(rx: Prescription, on: date) -> float | None:
    """The dose per intake in force on ``on``, in mg, when it is known."""
    changes = [e for e in rx.events if e.kind == DOSE_CHANGE and e.new_dose]
    starting = None if changes and changes[-1].new_dose == rx.dose else rx.dose
    text = starting or rx.dose
    for event in changes:
        if event.effective_date <= on:
            text = event.new_dose
    pct = parse_percent(text)
    if pct is not None:
        base = parse_mg(starting)
        return base * pct / 100 if base is not None else None
    return parse_mg(text)


def units_per_on_day(rx: Prescription | None, drug: Drug, strength: str, on: date) -> float:
    """Units (tablets, capsules) the patient takes on an on-day: intakes x dose / strength when
    both are in mg, else one unit per intake."""
    if rx is None:
        return float(drug.default_frequency_per_day)
    dose, unit = dose_mg_on(rx, on), parse_mg(strength)
    per_intake = dose / unit if dose is not None and unit is not None else 1.0
    return rx.frequency_per_day * per_intake


def computed_days_supply(quantity: int, units_per_day: float) -> int:
    """On-days a quantity covers (whole days; off-week days need nothing)."""
    if quantity <= 0 or units_per_day <= 0:
        return 0
    return max(1, min(MAX_DAYS_SUPPLY, math.floor(quantity / units_per_day + 1e-9)))


def prescriptions_of(patient_id: int, drug_id: int) -> list[Prescription]:
    return list(db.session.scalars(
        select(Prescription).where(Prescription.patient_id == patient_id, Prescription.drug_id == drug_id)
        .order_by(Prescription.start_date, Prescription.id)))


def current_prescription(rxs: list[Prescription], on: date) -> Prescription | None:
    current = [rx for rx in rxs if rx.is_current(on)]
    return current[-1] if current else None


# --- Dispensing -------------------------------------------------------------------------------

def _check(patient: Patient, data: dict, actor: Professional) -> tuple[Drug, list[Prescription]]:
    errors: dict[str, str] = {}
    today = utcnow().date()
    drug = db.session.get(Drug, data.get("drug_id")) if isinstance(data.get("drug_id"), int) else None
    if drug is None:
        errors["drug_id"] = _("Unknown drug.")
    quantity, on = data.get("quantity"), data.get("dispensed_on")
    if not isinstance(quantity, int) or quantity <= 0:
        errors["quantity"] = _("The quantity must be a whole number of units, at least 1.")
    strength = (data.get("strength") or "").strip()
    if not strength:
        errors["strength"] = _("Give the strength of one unit, e.g. 500 mg.")
    elif len(strength) > 40:
        errors["strength"] = _("Keep the strength under 40 characters.")
    days = data.get("days_supply")
    if days is not None and (not isinstance(days, int) or not 1 <= days <= MAX_DAYS_SUPPLY):
        errors["days_supply"] = _("Days of supply: between 1 and %(max)s.", max=MAX_DAYS_SUPPLY)
    if not isinstance(on, date):
        errors["dispensed_on"] = _("This field is required.")
    elif on > today:
        errors["dispensed_on"] = _("The dispensing date cannot be in the future.")
    if actor.organisation_id is None:
        errors["drug_id"] = _("Your account is not attached to a pharmacy.")
    rxs = prescriptions_of(patient.id, drug.id) if drug is not None else []
    if rxs and isinstance(on, date) and on < rxs[0].start_date:
        errors["dispensed_on"] = _("The dispensing date is before the start of the prescription (%(date)s).",
                                   date=rxs[0].start_date.isoformat())
    if errors:
        raise ValidationFailed(errors)
    return drug, rxs


def _is_duplicate(patient: Patient, actor: Professional, drug: Drug, data: dict) -> bool:
    return db.session.scalar(select(Dispensing.id).where(
        Dispensing.patient_id == patient.id, Dispensing.organisation_id == actor.organisation_id,
        Dispensing.drug_id == drug.id, Dispensing.dispensed_on == data["dispensed_on"],
        Dispensing.quantity == data["quantity"]).limit(1)) is not None


def _duplicate_warning() -> DispensingWarning:
    return DispensingWarning("duplicate", _(
        "This dispensing (same pharmacy, drug, date and quantity) is already recorded. "
        "Confirm only if it really was dispensed twice."), True)


def _soft_warnings(patient: Patient, drug: Drug, rx: Prescription | None, quantity: int, units: float,
                   on: date, cfg: Settings) -> list[DispensingWarning]:
    """Early or late refill, and a quantity that does not fit the regimen: shown, not blocking."""
    out = []
    if rx is not None:
        days = quantity / units if units else 0
        if abs(days - round(days)) > 1e-6:
            out.append(DispensingWarning("quantity_mismatch", _(
                "The quantity is not a whole number of treatment days (%(units)s units a day).",
                units=f"{units:g}")))
        elif rx.days_off and round(days) % rx.days_on:
            out.append(DispensingWarning("quantity_mismatch", _(
                "The quantity does not match whole cycles: %(days)s treatment days for cycles of %(on)s days on.",
                days=round(days), on=rx.days_on)))
    inputs = load_inputs([patient.id], on)[patient.id]
    course = next((d.course for d in measure_supply(inputs, on).drugs if d.drug_id == drug.id), None)
    if course is None:
        return out
    earlier = [Supply(r.dispensed_on, r.days_supply * course.rate_at(r.dispensed_on))
               for r in inputs.dispensings if r.drug_id == drug.id]
    check = refill_check(course, earlier, on)
    if check is not None and check.early(cfg.early_refill_fraction):
        out.append(DispensingWarning("early_refill", _(
            "Early refill: about %(left)s treatment days of the previous supply should still be left.",
            left=round(check.left_days))))
    if check is not None and check.late(cfg.late_refill_grace_days):
        out.append(DispensingWarning("late_refill", _(
            "Late refill: %(days)s treatment days without supply before this dispensing.", days=check.gap_days)))
    return out


def record_dispensing(patient: Patient, data: dict, actor: Professional, confirm_duplicate: bool = False,
                      confirm_unprescribed: bool = False) -> tuple[Dispensing, list[DispensingWarning]]:
    """Record a dispensing by ``actor``'s pharmacy; returns it with the warnings to show.

    A drug not prescribed on that day (never prescribed, or its prescription ended) and a
    dispensing already recorded are not refused outright (a pharmacist may know better) but need
    an explicit confirmation: without it ``NeedsConfirmation`` is raised and nothing is written.
    """
    lock_patients([patient.id])
    drug, rxs = _check(patient, data, actor)
    on, quantity, strength = data["dispensed_on"], data["quantity"], data["strength"].strip()
    rx = current_prescription(rxs, on)
    units = units_per_on_day(rx, drug, strength, on)
    blocking = []
    if rx is None and not confirm_unprescribed:
        blocking.append(DispensingWarning("not_prescribed", _(
            "%(drug)s is not currently prescribed to this patient. Confirm only if a prescription "
            "not yet recorded here exists.", drug=drug.inn), True))
    duplicate = _is_duplicate(patient, actor, drug, data)
    if duplicate and not confirm_duplicate:
        blocking.append(_duplicate_warning())
    cfg = settings()
    warnings = _soft_warnings(patient, drug, rx, quantity, units, on, cfg)
    if blocking:
        raise NeedsConfirmation(blocking + warnings)
    dispensing = Dispensing(
        patient_id=patient.id, prescription_id=rx.id if rx else None, drug_id=drug.id, strength=strength,
        quantity=quantity, days_supply=data.get("days_supply") or computed_days_supply(quantity, units),
        dispensed_on=on, organisation_id=actor.organisation_id, recorded_by_id=actor.id,
        confirmed_duplicate=duplicate, note=(data.get("note") or "").strip() or None)
    try:
        with db.session.begin_nested():
            db.session.add(dispensing)
            db.session.flush()
    except IntegrityError:
        # The same dispensing committed by someone else between our check and our insert.
        raise NeedsConfirmation([_duplicate_warning()]) from None
    if rx is None:
        warnings.insert(0, DispensingWarning("not_prescribed", _("Recorded without a current prescription."), True))
    audit.record("dispensing_add", patient_id=patient.id, obj=dispensing,
                 detail={"drug_id": drug.id, "warnings": [w.code for w in warnings]})
    recompute_patient(patient.id, locked=True)
    return dispensing, warnings


# --- Professional's report --------------------------------------------------------------------

def record_report(patient: Patient, data: dict, actor: Professional) -> AdherenceReport:
    errors: dict[str, str] = {}
    assessment = data.get("assessment")
    if assessment not in set(Assessment):
        errors["assessment"] = _("Choose good, doubtful or poor.")
    on = data.get("reported_on") or utcnow().date()
    if on > utcnow().date():
        errors["reported_on"] = _("The date cannot be in the future.")
    estimate = data.get("doses_missed_estimate")
    if estimate is not None and (not isinstance(estimate, int) or estimate < 0):
        errors["doses_missed_estimate"] = _("Give a number of doses, 0 or more.")
    note = (data.get("note") or "").strip()
    if len(note) > 2000:
        errors["note"] = _("Keep the note under 2000 characters.")
    if errors:
        raise ValidationFailed(errors)
    lock_patients([patient.id])
    report = AdherenceReport(patient_id=patient.id, professional_id=actor.id, reported_on=on,
                             assessment=assessment, doses_missed_estimate=estimate, note=note or None)
    db.session.add(report)
    db.session.flush()
    audit.record("adherence_report_add", patient_id=patient.id, obj=report, detail={"assessment": assessment})
    recompute_patient(patient.id, locked=True)
    return report


# --- Recompute --------------------------------------------------------------------------------

_UPDATED = ("pdc", "needed_days", "covered_days", "self_report", "professional_assessment", "updated_at")
COPY_THRESHOLD = 200


def upsert_snapshots(rows: list[tuple]) -> None:
    """Insert the day's snapshots (tuples in the order of ``SNAPSHOT_COLUMNS``), or update those
    already computed today; a row is never replaced by one computed earlier than itself. Many
    rows on PostgreSQL go through COPY."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) > COPY_THRESHOLD:
        _copy_upsert(rows)
        return
    table = AdherenceSnapshot.__table__
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["patient_id", "window", "computed_on"], set_={c: stmt.excluded[c] for c in _UPDATED},
        where=table.c.updated_at <= stmt.excluded.updated_at)
    db.session.execute(stmt, [dict(zip(SNAPSHOT_COLUMNS, row)) for row in rows])


def _copy_upsert(rows: list[tuple]) -> None:
    cols = ", ".join(f'"{c}"' for c in SNAPSHOT_COLUMNS)
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS adherence_snapshot_load ON COMMIT DELETE ROWS AS "
                       f"SELECT {cols} FROM adherence_snapshot WITH NO DATA")
        with cursor.copy(f"COPY adherence_snapshot_load ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _UPDATED)
        cursor.execute(f'INSERT INTO adherence_snapshot ({cols}) SELECT {cols} FROM adherence_snapshot_load '
                       f'ON CONFLICT (patient_id, "window", computed_on) DO UPDATE SET {updates} '
                       f'WHERE adherence_snapshot.updated_at <= EXCLUDED.updated_at')
        cursor.execute("TRUNCATE adherence_snapshot_load")


def raise_findings(found: Iterable[tuple[int, list[Finding]]], blocked: set[tuple[int, str]]) -> int:
    """One alert per patient and reason: none while one is open or was just resolved. All the
    patients' new alerts are raised together (``triage.raise_alerts``)."""
    new = []
    for patient_id, patient_findings in found:
        for finding in patient_findings:
            if (patient_id, finding.reason_code) in blocked:
                continue
            new.append(NewAlert(patient_id=patient_id, severity=finding.severity, source=ALERT_SOURCE,
                                reason_code=finding.reason_code, summary=finding.summary, detail=finding.detail))
            blocked.add((patient_id, finding.reason_code))
    raise_alerts(new)
    return len(new)


def recompute_patient(patient_id: int, *, now: datetime | None = None, locked: bool = False) -> PatientMeasures:
    """Recompute one patient's adherence today: snapshot upserted, findings raised as alerts."""
    return recompute_patients([patient_id], now=now, locked=locked)[patient_id]


def recompute_patients(patient_ids: Iterable[int], *, now: datetime | None = None,
                       locked: bool = False) -> dict[int, PatientMeasures]:
    """``recompute_patient`` for several patients with the same statements as for one."""
    now = now or utcnow()
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    if not locked:
        lock_patients(ids)
    cfg = settings()
    inputs = load_inputs(ids, now.date())
    results = {pid: evaluate(inputs[pid], now.date(), cfg) for pid in ids}
    upsert_snapshots([row for pid in ids for row in results[pid].snapshot_rows(pid, now)])
    active = set(db.session.scalars(select(Patient.id).where(
        Patient.id.in_(ids), Patient.status == PatientStatus.ACTIVE)))
    if active:
        blocked = recent_adherence_alerts(sorted(active), now, cfg.alert_cooldown_days)
        raise_findings([(pid, results[pid].findings) for pid in ids if pid in active], blocked)
    return results
