"""Time ``plan_checkins`` over a whole pilot, twice, and count its SQL statements.

    .venv/bin/python -m bench.bench_planning --db both --patients 100000

For each database (SQLite: a temporary file; PostgreSQL: ``oncolink_bench_plan``, dropped
and created here): the schema from the migrations, ``bench.seed`` with ``--patients``
enrolled patients, then ``plan_checkins(now=...)`` twice at the same instant. The first
pass inserts the period's check-ins; the second must insert nothing (idempotent). The
statements of the first pass are counted with a ``before_cursor_execute`` listener
(transaction control left out). ``now`` is next Monday 06:00 UTC, before any slot of that
week (check-in hours 9-17 local), so each eligible patient is due exactly one slot unless
its sequence (S3: periods of 2 or 4 weeks) started after that period's slot (``slots_due`` then gives none).

Verification: every eligible patient has exactly as many check-ins as ``slots_due`` gives
(1, or 0 for the case above), no patient that is not eligible has one, no (patient, period)
pair twice. Exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select

from bench.bench_pages import fresh_database
from bench.seed import seed

PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1/"
PG_DB = "oncolink_bench_plan"
TARGET_S = 20.0
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


def planning_instant(today: datetime) -> datetime:
    monday = (today - timedelta(days=today.weekday())).date() + timedelta(weeks=1)
    return datetime(monday.year, monday.month, monday.day, 6, 0, tzinfo=UTC)


def run(kind: str, n_patients: int, pg_url: str) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from app.care.models import Patient, Site
    from app.extensions import db
    from app.pathways.checkins.models import CheckIn
    from app.pathways.checkins.planning import eligible_patients, slots_due
    from app.pathways.checkins.tasks import plan_checkins
    from app.pathways.models import Enrolment, Sequence

    with fresh_database(kind, pg_url, keep=False, name=PG_DB) as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            seeded = seed(n_patients)
            db.session.remove()
            now = planning_instant(datetime.now(UTC))
            counted: list[str] = []

            def count(conn, cursor, statement, parameters, context, executemany):
                if not _TX_CONTROL.match(statement):
                    counted.append(statement)

            event.listen(db.engine, "before_cursor_execute", count)
            started = time.perf_counter()
            first = plan_checkins(now=now)
            first_s = time.perf_counter() - started
            event.remove(db.engine, "before_cursor_execute", count)
            db.session.remove()
            started = time.perf_counter()
            second = plan_checkins(now=now)
            second_s = time.perf_counter() - started
            db.session.remove()

            # Verification, outside the timings.
            horizon = timedelta(hours=app.config.get("CHECKIN_PLAN_HORIZON_HOURS", 48))
            eligible = db.session.execute(
                select(Patient.id, Patient.timezone, Patient.checkin_weekday, Patient.checkin_hour,
                       Enrolment.sequence, Enrolment.started_on, Enrolment.sequence_started_on,
                       Site.s3_followup_weeks)
                .join(Enrolment, Enrolment.active_patient_id == Patient.id)
                .join(Site, Site.id == Patient.site_id)
                .where(eligible_patients())).all()
            expected = {}
            for p in eligible:
                starts_on = p.sequence_started_on if p.sequence == Sequence.S3 else p.started_on
                expected[p.id] = len(slots_due(now, tz_name=p.timezone, weekday=p.checkin_weekday,
                                               hour=p.checkin_hour, sequence=p.sequence,
                                               s3_weeks=p.s3_followup_weeks, starts_on=starts_on,
                                               horizon=horizon))
            actual = Counter(dict(db.session.execute(
                select(CheckIn.patient_id, func.count()).group_by(CheckIn.patient_id)).all()))
            pairs_twice = db.session.scalar(select(func.count()).select_from(
                select(CheckIn.patient_id).group_by(CheckIn.patient_id, CheckIn.period_key)
                .having(func.count() > 1).subquery()))
            total = db.session.scalar(select(func.count()).select_from(CheckIn))
            db.session.remove()
            wrong = sum(1 for pid, n in expected.items() if actual.get(pid, 0) != n)
            not_eligible_with = sum(1 for pid in actual if pid not in expected)
            dist = Counter(expected.values())
            kinds = Counter(s.split(None, 1)[0].upper() for s in counted)
            db.engine.dispose()
    return {
        "kind": kind, "patients": seeded.patients, "seed_s": seeded.seconds, "now": now,
        "eligible": len(expected), "due_one": dist.get(1, 0), "due_zero": dist.get(0, 0),
        "due_more": sum(v for k, v in dist.items() if k > 1),
        "first": first, "first_s": first_s, "second": second, "second_s": second_s,
        "statements": len(counted), "kinds": dict(kinds), "total": total, "wrong": wrong,
        "not_eligible_with": not_eligible_with, "pairs_twice": pairs_twice,
    }


def report(results: list[dict]) -> tuple[str, bool]:
    label = {"sqlite": "SQLite (file)", "postgres": "PostgreSQL"}
    lines = [
        "| database | patients | eligible | first pass (s) | check-ins inserted | batches | SQL statements "
        "(first pass) | second pass (s) | inserted by the second pass | patients with a wrong count |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ok = True
    for r in results:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(r["kinds"].items()))
        lines.append(
            f"| {label[r['kind']]} | {r['patients']:,} | {r['eligible']:,} | {r['first_s']:.2f} | "
            f"{r['first']['planned']:,} | {r['first']['batches']} | {r['statements']} ({kinds}) | "
            f"{r['second_s']:.2f} | {r['second']['planned']} | {r['wrong']} |")
        good = (r["wrong"] == 0 and r["not_eligible_with"] == 0 and r["pairs_twice"] == 0
                and r["second"]["planned"] == 0 and r["first"]["planned"] == r["total"]
                and r["first_s"] < TARGET_S and r["statements"] < r["patients"] / 100)
        ok = ok and good
        lines.append("")
    notes = [
        f"- {label[r['kind']]}: now = {r['now'].isoformat()}; seeding {r['seed_s']:.1f} s; eligible "
        f"{r['eligible']:,} = {r['due_one']:,} due one slot + {r['due_zero']:,} due none (their sequence "
        f"started after the period's slot) + {r['due_more']} due more; check-ins in the table {r['total']:,}; "
        f"not-eligible patients with a check-in {r['not_eligible_with']}; (patient, period) pairs twice "
        f"{r['pairs_twice']}; {r['statements'] / r['patients'] * 1000:.1f} statements per 1,000 patients"
        for r in results
    ]
    table = "\n".join(line for line in lines if line) + "\n\n" + "\n".join(notes)
    return table, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_planning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--pg-url", default=PG_SERVER_URL, help="server URL (the bench database is created there)")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        print(f"{kind}: seeding {args.patients:,} patients...", file=sys.stderr, flush=True)
        results.append(run(kind, args.patients, args.pg_url))
    table, ok = report(results)
    print(table)
    print("OK" if ok else "FAILED (see the table: wrong counts, second pass inserting, or over target)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
