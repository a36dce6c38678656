"""The payments ledger: derive one month's payable activities, set-based, idempotently.

Follow-up months: an enrolment open on any day of the month yields one entry, for the sequence it
was in at the start of its month (the first of the month, or its start date). The amount is the
``seq_<S>_month`` tariff step for that month of follow-up. The press does not say who receives it:
it is attributed to the lead team's site (the patient's hospital site).
GP coordination: once per entry into S1, to the GP of the care team on that day (none: no entry).
Pharmacist interviews: see ``interviews.py`` (only when the community tables exist).
"""
from __future__ import annotations

import logging
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from app.care.models import CareTeamMember, Patient, Professional, Site
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Enrolment, EnrolmentEvent, Sequence

from .interviews import interview_entries
from .models import LedgerEntry
from .months import month_index, next_month, parse_month, utc_midnight
from .tariffs import TariffBook

log = logging.getLogger("oncolink.reports")
BATCH = 2000


@dataclass(frozen=True)
class _Enrolment:
    id: int
    patient_id: int
    site_id: int
    organisation_id: int
    started_on: date
    sequence: str  # current sequence (used when the history holds no change)


def build_ledger(month: str) -> dict[str, Any]:
    """Insert the entries of ``month`` ('YYYY-MM') not yet in the ledger. Safe to rerun."""
    first = parse_month(month)
    end = next_month(first)
    book = TariffBook.load()
    enrolments = _open_enrolments(first, end)
    history = _sequence_history(first, end)
    rows: list[dict[str, Any]] = []
    missing: set[str] = set()
    s1_starts: list[tuple[_Enrolment, date]] = []
    for e in enrolments:
        events = history.get(e.id, [])
        anchor = max(first, e.started_on)
        sequence = _sequence_at(events, utc_midnight(anchor), e.sequence)
        code = f"seq_{sequence}_month"
        rate = book.rate(code, first, month_index(e.started_on, first))
        if rate is None:
            missing.add(code)
        else:
            rows.append(_row(e, code, month, rate.amount_cents, rate.tariff_id,
                             f"enrolment:{e.id}:{sequence}:{month}"))
        s1_starts.extend((e, day) for day in _s1_entries(e, events, first, end))
    rows.extend(_gp_coordination(s1_starts, month, book, missing))
    rows.extend(interview_entries(first, end, month, book, missing))
    before = _count(month)
    _insert_ignoring_duplicates(rows)
    inserted = _count(month) - before
    log.info("ledger %s: %d candidates, %d inserted", month, len(rows), inserted)
    return {"month": month, "candidates": len(rows), "inserted": inserted, "no_tariff": sorted(missing)}


def _row(e: _Enrolment, activity: str, month: str, cents: int, tariff_id: int, ref: str,
         professional_id: int | None = None, organisation_id: int | None = None) -> dict[str, Any]:
    return {"patient_id": e.patient_id, "site_id": e.site_id,
            "organisation_id": organisation_id if professional_id else e.organisation_id,
            "professional_id": professional_id, "activity": activity, "period": month,
            "amount_cents": cents, "tariff_id": tariff_id, "source_ref": ref}


def _open_filter(first: date, end: date):
    return and_(Enrolment.started_on < end, or_(Enrolment.ended_on.is_(None), Enrolment.ended_on >= first))


def _open_enrolments(first: date, end: date) -> list[_Enrolment]:
    stmt = (select(Enrolment.id, Enrolment.patient_id, Patient.site_id, Site.organisation_id,
                   Enrolment.started_on, Enrolment.sequence)
            .join(Patient, Patient.id == Enrolment.patient_id).join(Site, Site.id == Patient.site_id)
            .where(_open_filter(first, end)).order_by(Enrolment.id))
    return [_Enrolment(*row) for row in db.session.execute(stmt)]


def _sequence_history(first: date, end: date) -> dict[int, list[tuple[datetime, str | None, str | None]]]:
    """Sequence changes of the month's enrolments, in order (one query)."""
    open_ids = select(Enrolment.id).where(_open_filter(first, end))
    stmt = (select(EnrolmentEvent.enrolment_id, EnrolmentEvent.at, EnrolmentEvent.from_value,
                   EnrolmentEvent.to_value)
            .where(EnrolmentEvent.kind == "sequence", EnrolmentEvent.enrolment_id.in_(open_ids))
            .order_by(EnrolmentEvent.enrolment_id, EnrolmentEvent.at, EnrolmentEvent.id))
    history: dict[int, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
    for enrolment_id, at, old, new in db.session.execute(stmt):
        history[enrolment_id].append((at, old, new))
    return history


def _sequence_at(events: list[tuple[datetime, str | None, str | None]], when: datetime, current: str) -> str:
    if not events:
        return current
    i = bisect_right([at for at, _, _ in events], when)
    if i == 0:
        return events[0][1] or current  # before the first change: what it changed from
    return events[i - 1][2] or current


def _s1_entries(e: _Enrolment, events, first: date, end: date) -> list[date]:
    """Days of the month on which the enrolment entered S1 (its start, or a change to S1)."""
    days = []
    if first <= e.started_on < end and _sequence_at(events, utc_midnight(e.started_on), e.sequence) == Sequence.S1:
        days.append(e.started_on)
    for at, old, new in events:
        day = at.date()
        if new == Sequence.S1 and old != Sequence.S1 and first <= day < end and day not in days:
            days.append(day)
    return days


def _gp_coordination(starts: list[tuple[_Enrolment, date]], month: str, book: TariffBook,
                     missing: set[str]) -> list[dict[str, Any]]:
    if not starts:
        return []
    code = "gp_coordination_S1"
    gps = _gps_of({e.patient_id for e, _ in starts})
    rows = []
    for e, day in starts:
        rate = book.rate(code, day)
        if rate is None:
            missing.add(code)
            continue
        gp = next(((pid, org) for pid, org, start, stop in gps.get(e.patient_id, ())
                   if start <= day and (stop is None or stop >= day)), None)
        if gp is None:
            continue  # no GP in the care team that day: nobody to pay (a rerun after adding one pays)
        rows.append(_row(e, code, month, rate.amount_cents, rate.tariff_id,
                         f"enrolment:{e.id}:S1:gp:{day.isoformat()}", professional_id=gp[0], organisation_id=gp[1]))
    return rows


def _gps_of(patient_ids: set[int]) -> dict[int, list[tuple[int, int | None, date, date | None]]]:
    found: dict[int, list[tuple[int, int | None, date, date | None]]] = defaultdict(list)
    ids = sorted(patient_ids)
    for i in range(0, len(ids), BATCH):
        stmt = (select(CareTeamMember.patient_id, CareTeamMember.professional_id, Professional.organisation_id,
                       CareTeamMember.start_date, CareTeamMember.end_date)
                .join(Professional, Professional.id == CareTeamMember.professional_id)
                .where(CareTeamMember.role == "gp", CareTeamMember.patient_id.in_(ids[i:i + BATCH]))
                .order_by(CareTeamMember.patient_id, CareTeamMember.start_date, CareTeamMember.id))
        for patient_id, prof_id, org_id, start, stop in db.session.execute(stmt):
            found[patient_id].append((prof_id, org_id, start, stop))
    return found


def _count(month: str) -> int:
    return db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.period == month)) or 0


def _insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    for i in range(0, len(rows), BATCH):
        chunk = [dict(r, created_at=now) for r in rows[i:i + BATCH]]
        stmt = insert(LedgerEntry).on_conflict_do_nothing(index_elements=["source_ref"])
        db.session.execute(stmt, chunk)
    db.session.flush()

