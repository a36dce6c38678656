"""Set-based reads of the nightly recompute: the whole population in a few statements.

The PDC of a *simple* course (one prescription of the drug, no dated event yet) is computed in
SQL, on PostgreSQL and SQLite alike: such a course needs the same units every on-day, so a
supply is its ``days_supply`` on-days, and counting in on-day indexes (the k-th on-day since
the start) turns carried-over stock into the max-plus recurrence

    end_n = max(end_{n-1}, index(day_n)) + supply_n = S_n + max_{k<=n} (index(day_k) - S_{k-1})

(S: running sum of the supplies), which window functions compute. Dispensing n covers the
on-days [end_n - supply_n, end_n); a window's covered days are the overlaps with it. Courses
with dose changes, interruptions or several prescriptions go through the Python measures
(``measures.supply_coverage``), which are also the reference the tests compare this with.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, text

from app.care.models import Patient, PatientStatus
from app.extensions import db
from app.pathways.models import Drug, Prescription, PrescriptionEvent

from .compute import RxRow
from .models import AdherenceReport, AdherenceSnapshot

EPOCH = date(2000, 1, 1)


@dataclass(frozen=True)
class SimpleCoverage:
    """A simple course's dispensing measures; days are ordinals."""

    start: int  # the treatment's first day
    until: int  # last day measured
    first_supply: int
    needed: dict[str, int]
    covered: dict[str, int]
    stock_days: int
    last_supply_days: int


def _day(dialect: str, column: str) -> str:
    """Days since 2000-01-01 of a date column."""
    if dialect == "postgresql":
        return f"({column} - DATE '2000-01-01')"
    return f"CAST(julianday({column}) - 2451544.5 AS INTEGER)"


def _greatest(dialect: str, a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if dialect == "postgresql" else f"MAX({a}, {b})"


def _least(dialect: str, a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if dialect == "postgresql" else f"MIN({a}, {b})"


def _on_until(dialect: str, x: str) -> str:
    """On-days in [s, x] of the cycle (``s``, ``on_``, ``len`` columns): ``regimen.on_until``."""
    span = f"(({x}) - s + 1)"
    return (f"(CASE WHEN {span} <= 0 THEN 0 WHEN on_ = len THEN {span} "
            f"ELSE ({span} / len) * on_ + {_least(dialect, f'{span} % len', 'on_')} END)")


def _coverage_sql(dialect: str) -> str:
    """The per-course values (first and last dispensing, window bounds) are computed once per
    course, in materialised steps, not once per dispensing."""
    dn, onu = (lambda c: _day(dialect, c)), (lambda x: _on_until(dialect, x))
    gr, le = (lambda a, b: _greatest(dialect, a, b)), (lambda a, b: _least(dialect, a, b))
    index_day = gr("d0", "s")
    in_period = ("x.patient_id = rx.patient_id AND x.drug_id = rx.drug_id AND x.dispensed_on <= :as_of "
                 "AND (rx.end_date IS NULL OR x.dispensed_on <= rx.end_date)")
    covered = ",\n       ".join(f"SUM({gr('0', le('e', 'h') + ' - ' + gr('e - q', f'l_{k}'))}) AS c_{k}"
                                  for k in ("start", "90", "30"))
    return f"""
WITH simple AS MATERIALIZED (
  SELECT rx.id AS rx_id, rx.patient_id, rx.drug_id, rx.days_on AS on_, rx.days_on + rx.days_off AS len,
         {dn('rx.start_date')} AS s,
         CASE WHEN rx.end_date IS NOT NULL AND {dn('rx.end_date')} < :a THEN {dn('rx.end_date')} ELSE :a END AS u,
         (SELECT MIN(x.dispensed_on) FROM dispensing x WHERE {in_period}) AS first_day,
         (SELECT MAX(x.dispensed_on) FROM dispensing x WHERE {in_period}) AS last_day
  FROM prescription rx JOIN patient p ON p.id = rx.patient_id AND p.status = :active
  WHERE rx.start_date <= :as_of
    AND NOT EXISTS (SELECT 1 FROM prescription_event ev WHERE ev.prescription_id = rx.id
                    AND ev.effective_date <= :as_of)
    AND NOT EXISTS (SELECT 1 FROM prescription o WHERE o.patient_id = rx.patient_id AND o.drug_id = rx.drug_id
                    AND o.id <> rx.id AND o.start_date <= :as_of)
), firsts AS (
  SELECT simple.*, {dn('first_day')} AS d0, {dn('last_day')} AS dmax FROM simple WHERE first_day IS NOT NULL
), bounded AS MATERIALIZED (
  SELECT firsts.*, {onu('u')} AS h, {onu(f'{index_day} - 1')} AS l_start,
         {onu(f"{gr(index_day, 'u - 89')} - 1")} AS l_90, {onu(f"{gr(index_day, 'u - 29')} - 1")} AS l_30
  FROM firsts
), supplies AS (
  SELECT b.rx_id, b.patient_id, b.drug_id, b.s, b.u, b.on_, b.len, b.d0, b.dmax, b.h, b.l_start, b.l_90, b.l_30,
         x.id AS did, x.days_supply AS q, {dn('x.dispensed_on')} AS dd
  FROM bounded b JOIN dispensing x ON x.patient_id = b.patient_id AND x.drug_id = b.drug_id
  WHERE x.dispensed_on <= :as_of AND {dn('x.dispensed_on')} <= b.u
), indexed AS (
  SELECT supplies.*, {onu('dd - 1')} AS i,
         SUM(q) OVER (PARTITION BY rx_id ORDER BY dd, did ROWS UNBOUNDED PRECEDING) AS cs
  FROM supplies
), ended AS (
  SELECT indexed.*,
         cs + MAX(i - cs + q) OVER (PARTITION BY rx_id ORDER BY dd, did ROWS UNBOUNDED PRECEDING) AS e
  FROM indexed
)
SELECT MIN(patient_id) AS patient_id, MIN(drug_id) AS drug_id, MIN(s) AS s, MIN(u) AS u, MIN(d0) AS d0, MIN(h) AS h, MIN(l_start) AS l_start,
       MIN(l_90) AS l_90, MIN(l_30) AS l_30, MAX(e) AS e_last,
       SUM(CASE WHEN dd = dmax THEN q ELSE 0 END) AS last_q,
       {covered}
FROM ended GROUP BY rx_id
"""


def simple_coverage(as_of: date) -> dict[tuple[int, int], SimpleCoverage]:
    """(patient, drug) -> dispensing measures of every active patient's simple course."""
    dialect = db.session.get_bind().dialect.name
    offset = EPOCH.toordinal()
    rows = db.session.execute(text(_coverage_sql(dialect)), {
        "a": as_of.toordinal() - offset, "as_of": as_of, "active": PatientStatus.ACTIVE.value})
    out = {}
    # Plain tuples, in the statement's column order (tens of thousands of rows).
    for pid, drug_id, s, u, d0, h, l_start, l_90, l_30, e_last, last_q, c_start, c_90, c_30 in rows:
        out[(pid, drug_id)] = SimpleCoverage(
            start=s + offset, until=u + offset, first_supply=d0 + offset,
            needed={"start": max(0, h - l_start), "90": max(0, h - l_90), "30": max(0, h - l_30)},
            covered={"start": int(c_start or 0), "90": int(c_90 or 0), "30": int(c_30 or 0)},
            stock_days=max(0, e_last - h), last_supply_days=int(last_q))
    return out


@dataclass
class Population:
    """What the nightly job reads before computing (one consistent snapshot)."""

    patient_ids: list[int]
    prescriptions: dict[int, list[RxRow]]
    complex_ids: set[int]  # patients with a course the SQL cannot measure
    reports: dict[int, list[tuple[date, str]]]
    snapshot_stamps: dict[int, datetime]  # today's snapshot already stored (its last update)


def read_population(as_of: date) -> Population:
    active = Patient.status == PatientStatus.ACTIVE
    ids = list(db.session.scalars(select(Patient.id).where(active).order_by(Patient.id)))
    has_events = (select(PrescriptionEvent.id).where(PrescriptionEvent.prescription_id == Prescription.id,
                                                     PrescriptionEvent.effective_date <= as_of).exists())
    prescriptions: dict[int, list[RxRow]] = {}
    complex_ids: set[int] = set()
    for row in db.session.execute(
        select(Prescription.patient_id, Prescription.id, Prescription.drug_id, Drug.inn, Prescription.dose,
               Prescription.frequency_per_day, Prescription.days_on, Prescription.days_off,
               Prescription.start_date, Prescription.end_date, has_events)
        .join(Drug, Drug.id == Prescription.drug_id).join(Patient, Patient.id == Prescription.patient_id)
        .where(active, Prescription.start_date <= as_of)
    ):
        rxs = prescriptions.setdefault(row[0], [])
        rx = RxRow(*row[1:10])
        if row[10] or any(other.drug_id == rx.drug_id for other in rxs):
            complex_ids.add(row[0])
        rxs.append(rx)
    reports: dict[int, list[tuple[date, str]]] = {}
    for pid, day, assessment in db.session.execute(
        select(AdherenceReport.patient_id, AdherenceReport.reported_on, AdherenceReport.assessment)
        .where(AdherenceReport.reported_on <= as_of).order_by(AdherenceReport.reported_on, AdherenceReport.id)
    ):
        reports.setdefault(pid, []).append((day, assessment))
    return Population(ids, prescriptions, complex_ids, reports, snapshot_stamps(as_of))


def snapshot_stamps(as_of: date, patient_ids: list[int] | None = None) -> dict[int, datetime]:
    """Patient -> last update of the snapshots already stored for ``as_of``."""
    query = (select(AdherenceSnapshot.patient_id, func.max(AdherenceSnapshot.updated_at))
             .where(AdherenceSnapshot.computed_on == as_of).group_by(AdherenceSnapshot.patient_id))
    if patient_ids is None:
        return dict(db.session.execute(query).all())
    if not patient_ids:
        return {}
    wanted = set(patient_ids)
    rows = db.session.execute(query.where(AdherenceSnapshot.patient_id.between(min(wanted), max(wanted))))
    return {pid: stamp for pid, stamp in rows if pid in wanted}
