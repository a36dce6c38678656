"""Synthetic demo data: three cancer centres, their community partners, ~40 patients, and the
guard that keeps the demo on a database of its own.

Every person here is invented; phone numbers are in ranges reserved for fiction
(ARCEP: 01 99 00, 06 39 98 ...). Never run against a production database: ``make demo`` runs on
``instance/demo.db`` whatever ``ONCOLINK_DATABASE_URL`` says, a database named with ``--database``
is refused unless it is empty or was made by the demo (``check_demo_database``), demo data is
refused in production, and the demo accounts and password do not work there (app/auth/demo_guard).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlite3
from pathlib import Path

from flask import current_app
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.auth.demo_guard import DEMO_EMAIL_DOMAIN, DEMO_PASSWORD, is_demo_email
from app.auth.services import hash_password
from app.care.models import CareTeamMember, Organisation, Patient, Professional, Site
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.pathways.catalogue import seed_catalogue
from app.pathways.models import Drug, Enrolment, EnrolmentEvent, Prescription, PrescriptionEvent, review_due

# The demo's own database, in the instance folder; and the table that marks a database as made by it.
DEMO_DATABASE_FILE = "demo.db"
DEMO_MARKER_TABLE = "oncolink_demo"


class DemoRefused(Exception):
    """The demo will not run here (the message says why); nothing was changed."""

FIRST = ["Marie", "Jean", "Françoise", "Michel", "Monique", "Alain", "Catherine", "Philippe", "Nathalie",
         "Patrick", "Isabelle", "Bernard", "Sylvie", "Daniel", "Martine", "Christian", "Nicole", "Gérard",
         "Sophie", "Éric", "Hélène", "Pascal", "Chantal", "Thierry", "Brigitte", "Didier", "Anne", "Yves"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
        "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand"]

CENTRES = [
    ("Institut de cancérologie Rhône", "LYN", "Lyon", "+33478000000"),
    ("Centre anticancéreux Val de Loire", "TRS", "Tours", "+33247000000"),
    ("Institut régional Atlantique", "NTE", "Nantes", "+33240000000"),
]


@dataclass
class DemoLogin:
    email: str
    role: str
    where: str


def _prof(email, first, last, role, org, site=None, phone=None):
    assert is_demo_email(email)  # the address refused in production
    p = Professional(email=email, password_hash=hash_password(DEMO_PASSWORD), first_name=first,
                     last_name=last, role=role, organisation=org, site=site, phone=phone, language="fr")
    db.session.add(p)
    return p


def seed_demo(n_patients: int = 40, rng_seed: int = 2026) -> list[DemoLogin]:
    """Create the demo circuit if the database has no professional yet; return the logins."""
    if current_app.config.get("ENV_NAME") == "production":
        raise DemoRefused("demo data is refused in production")
    if db.session.scalar(select(func.count()).select_from(Professional)):
        raise RuntimeError("the database already has accounts; demo data is only for an empty database")
    rng = random.Random(rng_seed)
    seed_catalogue()
    drugs = {d.inn: d for d in db.session.scalars(select(Drug))}
    today = utcnow().date()
    logins: list[DemoLogin] = []

    admin_org = Organisation(name="Onco'Link administration", kind="hospital", city="Paris")
    db.session.add(admin_org)
    _prof("admin@demo.oncolink.fr", "Ada", "Admin", Role.ADMIN, admin_org)
    logins.append(DemoLogin("admin@demo.oncolink.fr", Role.ADMIN, "all"))

    sites = []
    for idx, (name, code, city, phone) in enumerate(CENTRES):
        org = Organisation(name=name, kind="hospital", city=city, phone=phone, finess=f"69000{idx:04d}")
        site = Site(organisation=org, code=code, name=f"{name} – {city}", hospital_phone=phone,
                    timezone="Europe/Paris", s3_followup_weeks=2 if idx % 2 == 0 else 4)
        db.session.add_all([org, site])
        c = code.lower()
        staff = {
            "nurse": _prof(f"idec.{c}@demo.oncolink.fr", "Claire", f"Idec-{code}", Role.COORDINATING_NURSE, org, site,
                           f"+336399800{idx}1"),
            "nurse2": _prof(f"idec2.{c}@demo.oncolink.fr", "Julien", f"Infirmier-{code}", Role.COORDINATING_NURSE, org,
                            site, f"+336399800{idx}2"),
            "onco": _prof(f"onco.{c}@demo.oncolink.fr", "Paul", f"Oncologue-{code}", Role.ONCOLOGIST, org, site,
                          f"+336399800{idx}3"),
            "onco2": _prof(f"onco2.{c}@demo.oncolink.fr", "Léa", f"Oncologue2-{code}", Role.ONCOLOGIST, org, site,
                           f"+336399800{idx}4"),
            "pharma": _prof(f"pui.{c}@demo.oncolink.fr", "Inès", f"Pharmacienne-{code}", Role.HOSPITAL_PHARMACIST, org,
                            site, f"+336399800{idx}5"),
        }
        community = []
        for j in range(2):
            ph_org = Organisation(name=f"Pharmacie du Marché {city} {j + 1}", kind="community_pharmacy", city=city)
            gp_org = Organisation(name=f"Cabinet médical {city} {j + 1}", kind="gp_practice", city=city)
            ide_org = Organisation(name=f"Cabinet infirmier {city} {j + 1}", kind="nursing_practice", city=city)
            db.session.add_all([ph_org, gp_org, ide_org])
            community.append({
                "pharmacist": _prof(f"pharmacie{j + 1}.{c}@demo.oncolink.fr", "Hugo", f"Officine{j + 1}-{code}",
                                    Role.COMMUNITY_PHARMACIST, ph_org),
                "gp": _prof(f"medecin{j + 1}.{c}@demo.oncolink.fr", "Emma", f"Généraliste{j + 1}-{code}", Role.GP, gp_org),
                "ide": _prof(f"ide{j + 1}.{c}@demo.oncolink.fr", "Louis", f"Libéral{j + 1}-{code}",
                             Role.COMMUNITY_NURSE, ide_org),
            })
        sites.append((site, staff, community))
        for key in ("nurse", "onco", "pharma"):
            logins.append(DemoLogin(staff[key].email, staff[key].role, site.name))
        for key in ("pharmacist", "gp", "ide"):
            logins.append(DemoLogin(community[0][key].email, community[0][key].role, community[0][key].organisation.name))
    db.session.flush()

    regimens = [("capecitabine", "2000 mg", 2), ("palbociclib", "125 mg", 1), ("abemaciclib", "150 mg", 2),
                ("imatinib", "400 mg", 1), ("abiraterone", "1000 mg", 1), ("sunitinib", "50 mg", 1),
                ("lenalidomide", "25 mg", 1)]
    for i in range(n_patients):
        site, staff, community = sites[i % len(sites)]
        partners = community[i % 2]
        inn, dose, freq = regimens[i % len(regimens)]
        drug = drugs[inn]
        started = today - timedelta(days=rng.randint(3, 300))
        sequence = "S1" if (today - started).days < 21 else ("S2" if (today - started).days < 120 else "S3")
        pathway = "B" if drug.hospital_only else "A"
        lead = "community" if sequence == "S3" else "hospital"
        patient = Patient(
            site=site, mrn=f"{site.code}{100000 + i}", first_name=rng.choice(FIRST), last_name=rng.choice(LAST),
            birth_date=date(rng.randint(1938, 1985), rng.randint(1, 12), rng.randint(1, 28)),
            phone=f"+3363998{i:04d}", language="en" if i % 13 == 5 else "fr",
            channel="voice" if i % 9 == 4 else "sms", checkin_weekday=rng.randint(0, 4),
            checkin_hour=rng.choice([9, 10, 11, 14, 17]), timezone=site.timezone,
            consent_given=True, consent_date=started - timedelta(days=2), consent_recorded_by=staff["nurse"],
            status="paused" if i % 17 == 3 else "active",
        )
        db.session.add(patient)
        db.session.flush()
        enrolment = Enrolment(patient_id=patient.id, pathway=pathway, sequence=sequence, lead_team=lead,
                              started_on=started, active_patient_id=patient.id,
                              sequence_started_on=started + timedelta(days={"S1": 0, "S2": 21, "S3": 120}[sequence]))
        enrolment.review_due_on = review_due(sequence, enrolment.sequence_started_on, drug.default_days_on,
                                             drug.default_days_off)
        db.session.add(enrolment)
        def at(day: date):
            return datetime.combine(day, time(9, 30), tzinfo=timezone.utc)

        db.session.add(EnrolmentEvent(enrolment=enrolment, kind="enrolled", to_value=f"{pathway}/S1/hospital",
                                      reason="Inclusion", actor=staff["nurse"], at=at(started)))
        if sequence != "S1":
            db.session.add(EnrolmentEvent(enrolment=enrolment, kind="sequence", from_value="S1", to_value="S2",
                                          reason="Premier cycle terminé", actor=staff["nurse"],
                                          at=at(started + timedelta(days=21))))
        if sequence == "S3":
            db.session.add(EnrolmentEvent(enrolment=enrolment, kind="sequence", from_value="S2", to_value="S3",
                                          reason="Patient stabilisé, relais ville", actor=staff["onco"],
                                          at=at(started + timedelta(days=120))))
            db.session.add(EnrolmentEvent(enrolment=enrolment, kind="lead", from_value="hospital",
                                          to_value="community", reason="Relais ville", actor=staff["onco"],
                                          at=at(started + timedelta(days=120))))
        rx = Prescription(patient_id=patient.id, drug=drug, dose=dose, frequency_per_day=freq,
                          days_on=drug.default_days_on, days_off=drug.default_days_off, start_date=started,
                          prescriber=staff["onco" if i % 2 else "onco2"], recorded_by_id=staff["nurse"].id)
        db.session.add(rx)
        if inn == "capecitabine" and i % 3 == 0 and (today - started).days > 30:
            db.session.add(PrescriptionEvent(prescription=rx, kind="dose_change", new_dose="1500 mg",
                                             effective_date=started + timedelta(days=28),
                                             reason="Syndrome main-pied grade 2", recorded_by=staff["onco"]))
        for prof, is_lead in ((staff["onco" if i % 2 else "onco2"], True), (staff["nurse"], True),
                              (staff["pharma"], False), (partners["pharmacist"], lead == "community"),
                              (partners["gp"], False)):
            db.session.add(CareTeamMember(patient_id=patient.id, professional=prof, role=prof.role,
                                          is_lead=is_lead, start_date=started))
        if i % 4 == 0:
            db.session.add(CareTeamMember(patient_id=patient.id, professional=partners["ide"],
                                          role=Role.COMMUNITY_NURSE, start_date=started))
    db.session.flush()
    return logins


def demo_logins() -> list[DemoLogin]:
    """The demo accounts already in the database (for printing at start-up)."""
    rows = db.session.scalars(
        select(Professional).where(Professional.email.like("%@" + DEMO_EMAIL_DOMAIN)).order_by(Professional.id)
    )
    wanted = []
    seen_roles_per_place = set()
    for p in rows:
        place = p.site.name if p.site else (p.organisation.name if p.organisation else "all")
        key = (p.role, p.site_id or 0, p.role in ("community_pharmacist", "gp", "community_nurse"))
        if key in seen_roles_per_place:
            continue
        seen_roles_per_place.add(key)
        wanted.append(DemoLogin(p.email, p.role, place))
    return wanted


# -- the demo's database ------------------------------------------------------------------------

def demo_database_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / DEMO_DATABASE_FILE}"


def check_demo_database(url: str) -> None:
    """Refuse (``DemoRefused``) a database that holds anything the demo did not make: the demo
    runs only on an empty database or on one that carries its marker table. Reads only: a
    refused database is left exactly as it was."""
    found = _contents(url)
    if not found or DEMO_MARKER_TABLE in found:
        return
    shown = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
    raise DemoRefused(
        f"refused: the database {make_url(url).render_as_string(hide_password=True)} already holds "
        f"{len(found)} table(s) the demo did not create ({shown}). The demo only writes into an empty "
        f"database or one it made itself; nothing was changed.")


def mark_demo_database(url: str) -> None:
    """Mark a database (empty, or already the demo's) as the demo's, before anything else is written."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {DEMO_MARKER_TABLE} "
                              "(created_at VARCHAR(40) NOT NULL, note VARCHAR(200) NOT NULL)"))
            if conn.execute(text(f"SELECT COUNT(*) FROM {DEMO_MARKER_TABLE}")).scalar_one() == 0:
                conn.execute(text(f"INSERT INTO {DEMO_MARKER_TABLE} (created_at, note) VALUES (:at, :note)"),
                             {"at": utcnow().isoformat(), "note": "created by make demo: synthetic data only"})
    finally:
        engine.dispose()


def _contents(url: str) -> set[str]:
    """Names of the tables, views and sequences in the database (read-only)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_contents(parsed.database)
    if parsed.get_backend_name() != "postgresql":
        raise DemoRefused(f"refused: the demo runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            rows = conn.execute(text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'")).scalars().all()
            conn.rollback()
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", None) or exc).__name__
        raise DemoRefused(f"refused: cannot read the database ({reason}); nothing was changed") from None
    finally:
        engine.dispose()
    return set(rows)


def _sqlite_contents(path: str | None) -> set[str]:
    if not path or path == ":memory:" or not Path(path).exists() or Path(path).stat().st_size == 0:
        return set()
    try:
        # Read-only, without the application's connection settings (which would switch the file
        # to WAL mode): a refused file is not touched.
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DemoRefused(f"refused: {path} cannot be read as a SQLite database ({exc.__class__.__name__}); "
                          "nothing was changed") from None
