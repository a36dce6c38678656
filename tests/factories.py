"""Builders for test data: plain functions with sensible defaults, flushed not committed."""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from sqlalchemy import select

from app.care.models import CareTeamMember, Organisation, Patient, Professional, Site
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Drug, Enrolment, EnrolmentEvent, Prescription, review_due

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_PASSWORD_HASH = None


def _password_hash() -> str:
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:  # scrypt is slow on purpose: hash once per run
        from app.auth.services import hash_password

        _PASSWORD_HASH = hash_password(PASSWORD)
    return _PASSWORD_HASH


def create_organisation(kind="hospital", name=None, **kw) -> Organisation:
    n = next(_counter)
    org = Organisation(kind=kind, name=name or f"{kind} {n}", city="Lyon", **kw)
    db.session.add(org)
    db.session.flush()
    return org


def create_site(code=None, **kw) -> Site:
    n = next(_counter)
    org = kw.pop("organisation", None) or create_organisation("hospital")
    site = Site(organisation=org, code=code or f"S{n}", name=kw.pop("name", f"Site {n}"),
                hospital_phone=kw.pop("hospital_phone", "+33478000000"), **kw)
    db.session.add(site)
    db.session.flush()
    return site


def create_professional(role: str, *, site: Site | None = None, organisation: Organisation | None = None,
                        email=None, phone=None, **kw) -> Professional:
    n = next(_counter)
    if organisation is None:
        if site is not None:
            organisation = site.organisation
        elif role != Role.ADMIN:
            kind = {Role.COMMUNITY_PHARMACIST: "community_pharmacy", Role.GP: "gp_practice",
                    Role.COMMUNITY_NURSE: "nursing_practice"}.get(role, "hospital")
            organisation = create_organisation(kind)
    prof = Professional(email=email or f"{role}{n}@test.oncolink.fr", password_hash=_password_hash(),
                        first_name=kw.pop("first_name", "Test"), last_name=kw.pop("last_name", f"{role.title()}{n}"),
                        role=role, site=site, organisation=organisation, phone=phone, **kw)
    db.session.add(prof)
    db.session.flush()
    return prof


def drug(inn: str) -> Drug:
    return db.session.scalar(select(Drug).where(Drug.inn == inn))


def create_patient(site: Site, *, care_team=(), drug_inn="capecitabine", sequence="S2", lead_team="hospital",
                   prescriber: Professional | None = None, start: date | None = None, **kw) -> Patient:
    n = next(_counter)
    start = start or (utcnow().date() - timedelta(days=30))
    patient = Patient(
        site=site, mrn=kw.pop("mrn", f"MRN{n:06d}"), first_name=kw.pop("first_name", "Jeanne"),
        last_name=kw.pop("last_name", f"Patient{n}"), birth_date=kw.pop("birth_date", date(1955, 3, 14)),
        phone=kw.pop("phone", f"+33612{n:06d}"), consent_given=True, consent_date=start, **kw,
    )
    db.session.add(patient)
    db.session.flush()
    enrolment = Enrolment(patient_id=patient.id, pathway="A", sequence=sequence, lead_team=lead_team,
                          started_on=start, sequence_started_on=start, active_patient_id=patient.id,
                          review_due_on=review_due(sequence, start, 14, 7))
    db.session.add(enrolment)
    db.session.add(EnrolmentEvent(enrolment=enrolment, kind="enrolled", to_value=f"A/{sequence}/{lead_team}",
                                  reason="Inclusion"))
    if drug_inn:
        d = drug(drug_inn)
        prescriber = prescriber or create_professional(Role.ONCOLOGIST, site=site)
        db.session.add(Prescription(patient_id=patient.id, drug=d, dose="1000 mg",
                                    frequency_per_day=d.default_frequency_per_day, days_on=d.default_days_on,
                                    days_off=d.default_days_off, start_date=start, prescriber=prescriber))
    for prof in care_team:
        db.session.add(CareTeamMember(patient_id=patient.id, professional=prof, role=prof.role,
                                      start_date=start))
    db.session.flush()
    return patient
