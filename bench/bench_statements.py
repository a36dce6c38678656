"""Time the monthly statements: build one month's ledger, then render every site's statement.

    .venv/bin/python -m bench.bench_statements --db both --patients 15000 --write

Seeds, set-based (Core ``executemany``), 45 hospital sites, one GP per site, ``--patients``
patients spread over the sites with their enrolment (started over the previous 18 months: a third
in S1, then S2, then S3 by the sequence history, two sequence events each for most), a GP in each
care team, and the default tariffs. Then times ``build_ledger`` for the month (first run: inserts;
second run: the idempotent rerun), and the statement page (HTML) plus CSV of each of the 45 sites.
Databases: a temporary SQLite file, and PostgreSQL ``helper_reports_bench`` (dropped, created).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1/postgres"
PG_DB = "helper_reports_bench"
MONTH = "2026-10"
SITES = 45


def _database(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-statements-')}/bench.db"
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB}"))
        conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    engine.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1/{PG_DB}"


def _seed(db, patients: int) -> None:
    from app.care.models import (
        CareTeamMember,
        Organisation,
        Patient,
        Professional,
        Site,
    )
    from app.pathways.models import Enrolment, EnrolmentEvent

    rnd = random.Random(7)
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    s = db.session
    s.execute(insert(Organisation), [{"id": i, "name": f"H{i}", "kind": "hospital", "created_at": now,
                                      "updated_at": now, "active": True} for i in range(1, SITES + 2)])
    s.execute(insert(Site), [{"id": i, "organisation_id": i, "code": f"S{i:02d}", "name": f"Site {i}",
                              "timezone": "Europe/Paris", "hospital_phone": "+33100000000", "s3_followup_weeks": 2,
                              "active": True, "created_at": now, "updated_at": now} for i in range(1, SITES + 1)])
    s.execute(insert(Professional), [{"id": i, "email": f"gp{i}@x.test", "password_hash": "x", "first_name": "G",
                                      "last_name": f"P{i}", "role": "gp", "organisation_id": SITES + 1,
                                      "language": "fr", "active": True, "session_version": 1,
                                      "created_at": now, "updated_at": now} for i in range(1, SITES + 1)])
    pats, enrs, events, teams = [], [], [], []
    for pid in range(1, patients + 1):
        site = pid % SITES + 1
        start = date(2025, 5, 1) + timedelta(days=rnd.randrange(0, 540))
        pats.append({"id": pid, "site_id": site, "mrn": f"M{pid}", "first_name": "A", "last_name": "B",
                     "birth_date": date(1955, 1, 1), "phone": f"+3361{pid:07d}", "language": "fr", "channel": "sms",
                     "checkin_weekday": 0, "checkin_hour": 10, "timezone": "Europe/Paris", "consent_given": True,
                     "status": "active", "created_at": now, "updated_at": now})
        enrs.append({"id": pid, "patient_id": pid, "pathway": "A", "sequence": "S3", "lead_team": "hospital",
                     "status": "active", "started_on": start, "sequence_started_on": start,
                     "active_patient_id": pid, "created_at": now, "updated_at": now})
        s2 = datetime.combine(start + timedelta(days=21), datetime.min.time(), timezone.utc)
        events.append({"enrolment_id": pid, "kind": "sequence", "from_value": "S1", "to_value": "S2",
                       "reason": "b", "at": s2})
        events.append({"enrolment_id": pid, "kind": "sequence", "from_value": "S2", "to_value": "S3",
                       "reason": "b", "at": s2 + timedelta(days=63)})
        teams.append({"patient_id": pid, "professional_id": site, "role": "gp", "is_lead": False,
                      "start_date": start, "created_at": now})
    for model, rows in ((Patient, pats), (Enrolment, enrs), (EnrolmentEvent, events), (CareTeamMember, teams)):
        for i in range(0, len(rows), 5000):
            s.execute(insert(model), rows[i:i + 5000])
    s.commit()


def _seed_tariffs(db) -> None:
    from app.reports.models import Tariff

    rows = [("gp_coordination_S1", "gp", 2500, 1)]
    for seq in ("S1", "S2", "S3"):
        rows += [(f"seq_{seq}_month", "site", 2500, 1), (f"seq_{seq}_month", "site", 5000, 7)]
    if not db.session.query(Tariff).count():
        db.session.add_all(Tariff(code=c, recipient=r, amount_cents=a, from_month=m, valid_from=date(2020, 1, 1),
                                  note="bench") for c, r, a, m in rows)
    db.session.commit()


def run(kind: str, patients: int) -> dict:
    from flask import render_template
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.reports.ledger import build_ledger
    from app.reports.statements import monthly_statement, statement_csv

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": _database(kind), "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade()
        _seed(db, patients)
        _seed_tariffs(db)
        t0 = time.perf_counter()
        first = build_ledger(MONTH)
        db.session.commit()
        t1 = time.perf_counter()
        again = build_ledger(MONTH)
        db.session.commit()
        t2 = time.perf_counter()
        sites = list(range(1, SITES + 1))
        size = 0
        with app.test_request_context(f"/reports/statements?month={MONTH}"):
            from app.care.models import Site

            for site_id in sites:
                statement = monthly_statement(MONTH, [site_id])
                site = db.session.get(Site, site_id)
                html = render_template("reports/statements.html", statement=statement, sites=[site], site="")
                size += len(html) + len(statement_csv(statement))
        t3 = time.perf_counter()
        db.session.remove()
        db.engine.dispose()
    return {"db": kind, "patients": patients, "inserted": first["inserted"], "rerun_inserted": again["inserted"],
            "build_s": t1 - t0, "rerun_s": t2 - t1, "render_s": t3 - t2, "total_s": (t1 - t0) + (t3 - t2),
            "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--patients", type=int, default=15000)
    parser.add_argument("--write", action="store_true", help="append the results to docs/benchmarks.md")
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = [run(k, args.patients) for k in kinds]
    lines = ["| database | patients | entries inserted | build (s) | rerun (s, inserted) | 45 statements HTML+CSV (s) | build + statements (s) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {'SQLite (file, WAL)' if r['db'] == 'sqlite' else 'PostgreSQL'} | {r['patients']:,} | "
                     f"{r['inserted']:,} | {r['build_s']:.2f} | {r['rerun_s']:.2f} ({r['rerun_inserted']}) | "
                     f"{r['render_s']:.2f} | {r['total_s']:.2f} |")
    print("\n".join(lines))
    if args.write:
        with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as out:
            out.write("\n## Monthly statements\n\n"
                      f"`bench/bench_statements.py --db both --patients {args.patients}`: 45 sites, one enrolment per "
                      "patient (S1 -> S2 -> S3 by the sequence history), a GP in every care team, default tariffs. "
                      f"`build_ledger('{MONTH}')` then its rerun (idempotent), then the statement page and CSV of each "
                      "of the 45 sites (two grouped queries each). Target: build + statements < 5 s. "
                      f"Machine: 2 shared cores, {date.today().isoformat()}.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
