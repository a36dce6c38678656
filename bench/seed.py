"""Set-based seeding of a synthetic pilot: N patients over 45 hospital sites.

Rows are built in Python with explicit ids, then written table by table in one
transaction: SQLAlchemy Core ``insert()`` in batches of 5,000 on SQLite, ``COPY``
on PostgreSQL. Every person is invented. Run it only on an empty database whose
schema comes from the migrations (``flask_migrate.upgrade()``).

Site sizes follow a Zipf law (the largest centre has about a fifth of the
patients, the smallest a few dozen at 50,000), as in the pilot: a few large
cancer centres and many small hospitals. Each patient has an active enrolment
with its history, one current prescription, consent, and a care team of 4 or 5:
oncologist, coordinating nurse, a community pharmacist and a GP from the site's
catchment, plus either the hospital pharmacist (pathway B) or a community nurse.

The j-th patient of a site gets the same attributes whatever N is (its random
draws are seeded by site and rank), so a page about it issues the same
statements at every size.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select, text

from app.auth.services import hash_password
from app.care.models import CareTeamMember, Organisation, Patient, Professional, Site
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.pathways.catalogue import seed_catalogue
from app.pathways.models import (
    Drug,
    Enrolment,
    EnrolmentEvent,
    Prescription,
    PrescriptionEvent,
)

N_SITES = 45
BATCH = 5_000
BENCH_PASSWORD = "bench-only-password-2026"
EMAIL_DOMAIN = "bench.oncolink.fr"

# Staff and catchment per site: one per so many of the site's patients, with a floor.
HOSPITAL_STAFF = {  # role: (patients per person, minimum)
    Role.COORDINATING_NURSE: (400, 2),
    Role.ONCOLOGIST: (150, 2),
    Role.HOSPITAL_PHARMACIST: (1000, 1),
}
COMMUNITY_STAFF = {  # role: (patients per person, minimum, organisation kind, name stem)
    Role.COMMUNITY_PHARMACIST: (10, 2, "community_pharmacy", "Pharmacie"),
    Role.GP: (10, 2, "gp_practice", "Cabinet médical"),
    Role.COMMUNITY_NURSE: (25, 1, "nursing_practice", "Cabinet infirmier"),
}

LAST_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefevre", "Faure", "Andre",
    "Mercier", "Blanc", "Guerin", "Boyer", "Garnier", "Chevalier", "Francois", "Legrand", "Gauthier", "Garcia",
    "Perrin", "Robin", "Clement", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson",
    "Marchand", "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noel", "Meyer", "Dufour", "Meunier",
    "Brun", "Blanchard", "Giraud", "Joly", "Riviere", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud",
    "Martinez", "Gerard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron",
    "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix", "Olivier", "Philippe",
    "Bourgeois", "Pierre", "Benoit", "Rey", "Leclerc", "Payet", "Rolland", "Leclercq", "Guillaume", "Lecomte",
]
FIRST_NAMES = [
    "Marie", "Jean", "Pierre", "Michel", "Monique", "Alain", "Catherine", "Philippe", "Nathalie", "Patrick",
    "Isabelle", "Bernard", "Sylvie", "Daniel", "Martine", "Christian", "Nicole", "Gerard", "Sophie", "Eric",
    "Helene", "Pascal", "Chantal", "Thierry", "Brigitte", "Didier", "Anne", "Yves", "Francoise", "Jacques",
    "Christine", "Andre", "Valerie", "Rene", "Sandrine", "Claude", "Veronique", "Louis", "Dominique", "Marc",
    "Jacqueline", "Alain", "Danielle", "Joseph", "Odile", "Roger", "Annie", "Serge", "Colette", "Henri",
]
# Catalogue INN -> (share of patients, prescribed dose).
REGIMENS = {
    "capecitabine": (30, "2000 mg"), "palbociclib": (18, "125 mg"), "abemaciclib": (12, "150 mg"),
    "imatinib": (10, "400 mg"), "abiraterone": (15, "1000 mg"), "sunitinib": (7, "50 mg"),
    "lenalidomide": (8, "25 mg"),
}
# Common surnames are much more common: weight 1/(rank + 4).
_LAST_WEIGHTS = [1 / (rank + 4) for rank in range(len(LAST_NAMES))]


@dataclass(frozen=True)
class SeedResult:
    patients: int
    professionals: int
    organisations: int
    care_team_members: int
    rows: int
    seconds: float
    largest_site_id: int
    largest_site_patients: int
    nurse_email: str          # a coordinating nurse of the largest site
    probe_patient_id: int     # the first patient of the largest site (same shape at every size)


def site_sizes(n_patients: int, n_sites: int = N_SITES) -> list[int]:
    """Patients per site, largest first: Zipf weights 1/rank, rounded so they sum to ``n_patients``."""
    weights = [1 / rank for rank in range(1, n_sites + 1)]
    total = sum(weights)
    exact = [n_patients * w / total for w in weights]
    sizes = [int(x) for x in exact]
    by_fraction = sorted(range(n_sites), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in by_fraction[: n_patients - sum(sizes)]:
        sizes[i] += 1
    return sizes


class _Ids:
    """Explicit primary keys, so child rows can be built before anything is written."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def __call__(self, table: str) -> int:
        value = self._next.get(table, 1)
        self._next[table] = value + 1
        return value


@dataclass
class _SiteStaff:
    site_id: int
    code: str
    nurses: list[int]
    oncologists: list[int]
    pharmacists: list[int]
    community: dict[str, list[tuple[int, int]]]  # role -> [(professional id, organisation id)]


def seed(n_patients: int, *, rng_seed: int = 2026) -> SeedResult:
    """Write the whole synthetic pilot and commit. Needs an app context on an empty, migrated database."""
    started = time.perf_counter()
    seed_catalogue()
    db.session.commit()
    drugs = {d.inn: d for d in db.session.scalars(select(Drug))}
    now = utcnow()
    today = now.date()
    password_hash = hash_password(BENCH_PASSWORD)
    ids = _Ids()
    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("organisation", "site", "professional", "patient", "enrolment",
                              "enrolment_event", "prescription", "prescription_event", "care_team_member")
    }
    stamps = {"created_at": now, "updated_at": now}

    def professional(role: str, first: str, last: str, org_id: int, site_id: int | None, email: str) -> int:
        pid = ids("professional")
        rows["professional"].append({
            "id": pid, "email": email, "password_hash": password_hash, "first_name": first,
            "last_name": last, "role": str(role), "organisation_id": org_id, "site_id": site_id,
            "phone": None, "rpps": f"1{pid:010d}", "language": "fr", "active": True,
            "session_version": 1, "last_login_at": None, **stamps,
        })
        return pid

    sizes = site_sizes(n_patients)
    staff: list[_SiteStaff] = []
    for idx, size in enumerate(sizes):
        code = f"B{idx + 1:02d}"
        org_id = ids("organisation")
        rows["organisation"].append({
            "id": org_id, "name": f"Centre hospitalier {code}", "kind": "hospital",
            "finess": f"{990000000 + idx}", "city": f"Ville {code}", "phone": "+33100000000",
            "active": True, **stamps,
        })
        site_id = ids("site")
        rows["site"].append({
            "id": site_id, "organisation_id": org_id, "code": code, "name": f"Site {code}",
            "timezone": "Europe/Paris", "hospital_phone": "+33100000000",
            "s3_followup_weeks": 2 if idx % 2 == 0 else 4, "active": True, **stamps,
        })
        hospital: dict[str, list[int]] = {}
        for role, (per, floor) in HOSPITAL_STAFF.items():
            count = max(floor, math.ceil(size / per))
            hospital[role] = [
                professional(role, "Bench", f"{role.title().replace('_', '')}{k}-{code}", org_id, site_id,
                             f"{role}{k}.{code.lower()}@{EMAIL_DOMAIN}")
                for k in range(1, count + 1)
            ]
        community: dict[str, list[tuple[int, int]]] = {}
        for role, (per, floor, kind, stem) in COMMUNITY_STAFF.items():
            members = []
            for k in range(1, max(floor, math.ceil(size / per)) + 1):
                c_org = ids("organisation")
                rows["organisation"].append({
                    "id": c_org, "name": f"{stem} {code}-{k}", "kind": kind, "finess": None,
                    "city": f"Ville {code}", "phone": None, "active": True, **stamps,
                })
                members.append((professional(role, "Bench", f"{stem.split()[-1]}{k}-{code}", c_org, None,
                                             f"{role}{k}.{code.lower()}@{EMAIL_DOMAIN}"), c_org))
            community[role] = members
        staff.append(_SiteStaff(site_id, code, hospital[Role.COORDINATING_NURSE], hospital[Role.ONCOLOGIST],
                                hospital[Role.HOSPITAL_PHARMACIST], community))

    # Patients arrive interleaved across sites, as enrolments do; ids follow that order.
    slots = [(s, j) for s, size in enumerate(sizes) for j in range(size)]
    random.Random(rng_seed).shuffle(slots)
    regimen_names = list(REGIMENS)
    regimen_weights = [REGIMENS[name][0] for name in regimen_names]
    probe_patient_id = 0
    for site_idx, rank in slots:
        s = staff[site_idx]
        # Draws that do not depend on N come first, from a generator seeded by site and rank.
        rng = random.Random(rng_seed * 1_000_003 + site_idx * 100_003 + rank)
        inn = rng.choices(regimen_names, regimen_weights)[0]
        days = 60 if rank == 0 else rng.randint(3, 700)
        first_name = rng.choice(FIRST_NAMES)
        last_name = rng.choices(LAST_NAMES, _LAST_WEIGHTS)[0]
        birth = date(rng.randint(1935, 1990), rng.randint(1, 12), rng.randint(1, 28))
        weekday, hour = rng.randint(0, 4), rng.choice([9, 10, 11, 14, 17])
        roll = rng.random()
        status = "paused" if roll < 0.04 else ("hospitalised" if roll < 0.05 else "active")
        dose_change = rng.random() < 0.08
        second_line = rng.random() < 0.5
        # Then the picks among the site's staff, whose pools grow with N.
        nurse = rng.choice(s.nurses)
        oncologist = rng.choice(s.oncologists)
        pharmacist_pick = rng.choice(s.pharmacists)
        c_pharmacist = rng.choice(s.community[Role.COMMUNITY_PHARMACIST])[0]
        gp = rng.choice(s.community[Role.GP])[0]
        c_nurse = rng.choice(s.community[Role.COMMUNITY_NURSE])[0]

        drug = drugs[inn]
        start = today - timedelta(days=days)
        sequence = "S1" if days < 21 else ("S2" if days < 120 else "S3")
        pathway = "B" if drug.hospital_only else "A"
        lead = "community" if sequence == "S3" else "hospital"
        pid = ids("patient")
        if site_idx == 0 and rank == 0:
            probe_patient_id = pid
        rows["patient"].append({
            "id": pid, "site_id": s.site_id, "mrn": f"{s.code}{rank + 1:07d}", "ins": None,
            "first_name": first_name, "last_name": last_name, "birth_date": birth,
            "phone": f"+3363998{pid % 10_000:04d}", "language": "en" if pid % 29 == 0 else "fr",
            "channel": "voice" if pid % 11 == 0 else "sms", "checkin_weekday": weekday,
            "checkin_hour": hour, "timezone": "Europe/Paris", "consent_given": True,
            "consent_date": start - timedelta(days=2), "consent_recorded_by_id": nurse,
            "status": status, "opted_out_at": None, **stamps,
        })
        rows["enrolment"].append({
            "id": pid, "patient_id": pid, "pathway": pathway, "sequence": sequence, "lead_team": lead,
            "status": "active", "started_on": start,
            "sequence_started_on": start + timedelta(days={"S1": 0, "S2": 21, "S3": 120}[sequence]),
            "ended_on": None, "end_reason": None, "active_patient_id": pid, **stamps,
        })
        history = [("enrolled", None, f"{pathway}/S1/hospital", "Inclusion", nurse, 0)]
        if sequence != "S1":
            history.append(("sequence", "S1", "S2", "Premier cycle terminé", nurse, 21))
        if sequence == "S3":
            history.append(("sequence", "S2", "S3", "Patient stabilisé", oncologist, 120))
            history.append(("lead", "hospital", "community", "Relais ville", oncologist, 120))
        for kind, from_value, to_value, reason, actor, offset in history:
            rows["enrolment_event"].append({
                "id": ids("enrolment_event"), "enrolment_id": pid, "kind": kind, "from_value": from_value,
                "to_value": to_value, "reason": reason, "actor_id": actor,
                "at": now - timedelta(days=days - offset),
            })
        regimen_dose = REGIMENS[inn][1]
        rows["prescription"].append({
            "id": pid, "patient_id": pid, "drug_id": drug.id, "dose": regimen_dose,
            "frequency_per_day": drug.default_frequency_per_day, "days_on": drug.default_days_on,
            "days_off": drug.default_days_off, "start_date": start, "end_date": None,
            "prescriber_id": oncologist, "recorded_by_id": nurse, **stamps,
        })
        if dose_change and days > 30:
            rows["prescription_event"].append({
                "id": ids("prescription_event"), "prescription_id": pid, "kind": "dose_change",
                "effective_date": start + timedelta(days=28), "new_dose": "75 %",
                "reason": "Toxicité grade 2", "recorded_by_id": oncologist,
                "recorded_at": now - timedelta(days=days - 28),
            })
        team = [(oncologist, Role.ONCOLOGIST, True), (nurse, Role.COORDINATING_NURSE, lead == "hospital"),
                (c_pharmacist, Role.COMMUNITY_PHARMACIST, lead == "community"), (gp, Role.GP, False)]
        if pathway == "B":
            team.append((pharmacist_pick, Role.HOSPITAL_PHARMACIST, False))
        elif second_line:
            team.append((c_nurse, Role.COMMUNITY_NURSE, False))
        for prof_id, role, is_lead in team:
            rows["care_team_member"].append({
                "id": ids("care_team_member"), "patient_id": pid, "professional_id": prof_id,
                "role": str(role), "is_lead": is_lead, "start_date": start, "end_date": None,
                "created_at": now,
            })

    tables: list[tuple[str, Table]] = [
        ("organisation", Organisation.__table__), ("site", Site.__table__),
        ("professional", Professional.__table__), ("patient", Patient.__table__),
        ("enrolment", Enrolment.__table__), ("enrolment_event", EnrolmentEvent.__table__),
        ("prescription", Prescription.__table__), ("prescription_event", PrescriptionEvent.__table__),
        ("care_team_member", CareTeamMember.__table__),
    ]
    # The session's own connection: on SQLite it already holds the write lock.
    conn = db.session.connection()
    for name, table in tables:
        _write(conn, table, rows[name])
    if conn.dialect.name == "postgresql":
        for name, _table in tables:
            # Explicit ids were written: move the sequences past them.
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # What autovacuum would do shortly after a bulk load; without it the planner
        # sees empty tables.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    largest = staff[0]
    return SeedResult(
        patients=len(rows["patient"]), professionals=len(rows["professional"]),
        organisations=len(rows["organisation"]), care_team_members=len(rows["care_team_member"]),
        rows=sum(len(v) for v in rows.values()), seconds=time.perf_counter() - started,
        largest_site_id=largest.site_id, largest_site_patients=sizes[0],
        nurse_email=f"{Role.COORDINATING_NURSE}1.{largest.code.lower()}@{EMAIL_DOMAIN}",
        probe_patient_id=probe_patient_id,
    )


def _write(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table.name, rows)
        return
    for batch in _chunks(rows, BATCH):
        conn.execute(table.insert(), batch)


def _copy(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY through psycopg, inside the SQLAlchemy transaction."""
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
