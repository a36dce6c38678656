"""Ledger entries for community pharmacist interviews, when the community module is installed.

The fee is a yearly package: the year-1 fee is paid at the patient's first (initial) interview, the
later-year fee at the first interview of each following year (years counted from the first one).
The community tables are read through plain columns; if the module or a column is missing, no entry.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select

from app.care.models import Patient, Professional, Site
from app.extensions import db

from .tariffs import TariffBook

log = logging.getLogger("oncolink.reports")


def _interview_model():
    try:
        from app.community.models import PharmacistInterview  # type: ignore[import-not-found]
    except ImportError:
        return None
    columns = PharmacistInterview.__table__.c
    date_column = next((columns[n] for n in ("held_on", "interview_date", "date") if n in columns), None)
    prof_column = next((columns[n] for n in ("pharmacist_id", "professional_id") if n in columns), None)
    if date_column is None or prof_column is None or "patient_id" not in columns:
        log.warning("ledger: the interview table has no recognised columns; interviews not paid")
        return None
    org_column = columns.get("organisation_id")
    return PharmacistInterview, date_column, prof_column, org_column


def interview_entries(first: date, end: date, month: str, book: TariffBook,
                      missing: set[str]) -> list[dict[str, Any]]:
    found = _interview_model()
    if found is None:
        return []
    model, held_on, professional, organisation = found
    in_month = select(model.patient_id).where(held_on >= first, held_on < end)
    stmt = (select(model.id, model.patient_id, held_on, professional,
                   organisation if organisation is not None else Professional.organisation_id, Patient.site_id)
            .join(Patient, Patient.id == model.patient_id).join(Site, Site.id == Patient.site_id)
            .join(Professional, Professional.id == professional)
            .where(model.patient_id.in_(in_month), held_on < end)
            .order_by(model.patient_id, held_on, model.id))
    rows: list[dict[str, Any]] = []
    first_of: dict[int, date] = {}
    paid_years: set[tuple[int, int]] = set()
    for interview_id, patient_id, day, prof_id, org_id, site_id in db.session.execute(stmt):
        start = first_of.setdefault(patient_id, day)
        year = (day - start).days // 365
        if (patient_id, year) in paid_years:
            continue
        paid_years.add((patient_id, year))
        if not (first <= day < end):
            continue
        code = "interview_year1" if year == 0 else "interview_later_year"
        rate = book.rate(code, day)
        if rate is None:
            missing.add(code)
            continue
        rows.append({"patient_id": patient_id, "site_id": site_id,
                     "organisation_id": org_id,
                     "professional_id": prof_id, "activity": code, "period": month,
                     "amount_cents": rate.amount_cents, "tariff_id": rate.tariff_id,
                     "source_ref": f"interview:{interview_id}"})
    return rows
