"""Time the nightly adherence recompute on a synthetic pilot with two years of history.

    .venv/bin/python -m bench.bench_adherence --db postgres --patients 50000
    .venv/bin/python -m bench.bench_adherence --db sqlite --patients 50000
    .venv/bin/python -m bench.bench_adherence --db postgres --reuse      # time again, no reseeding
    .venv/bin/python -m bench.bench_adherence --db both --write          # append to docs/benchmarks.md

The pilot comes from ``bench.seed`` (patients, care teams, one prescription each); every
prescription is then moved to start two years ago, and written set-based (PostgreSQL ``COPY``,
SQLite ``executemany`` on the driver connection, in chunks): dispensings every cycle (every 30
days on continuous regimens) by the patient's community pharmacy, a weekly check-in with a
``doses_missed`` answer on on-weeks (``dose_in_break`` on off-weeks), and a professional's
report for one patient in ten. Adherence profiles: 85% on time (+-2 days), 9% irregular
(0-10 days late), 5% poor (5-30 days late, a third of whom report no missed dose), 1% refilling
every 20 days (above the prescription).

Then ``recompute_adherence`` runs twice: the first run raises the alerts of the findings, the
second is the steady nightly state (everything deduplicated). The time of each phase (loading,
computing, writing snapshots, raising alerts) is measured by wrapping the job's functions.
Databases: a temporary SQLite file, and the PostgreSQL database ``helper_adh_bench`` (dropped
and created here, kept for ``--reuse``).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1/"
PG_BENCH_DB = "helper_adh_bench"
PG_PROTECTED = frozenset({"postgres", "test", "template0", "template1"})
SQLITE_PATH = Path(tempfile.gettempdir()) / "oncolink-bench-adherence.db"
CHUNK = 2_000  # patients per write chunk
HISTORY_DAYS = 730
TARGET_SECONDS = 10.0


def pg_url(create: bool) -> str:
    if PG_BENCH_DB in PG_PROTECTED:  # pragma: no cover - guards an edit of the constant
        raise SystemExit("refusing to use a protected database")
    server = make_url(PG_SERVER_URL)
    if create:
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_BENCH_DB}"))
        admin.dispose()
    return server.set(database=PG_BENCH_DB).render_as_string(hide_password=False)


def make_app(url: str):
    from app import create_app

    return create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})


# --- Seeding ---------------------------------------------------------------------------------

class Writer:
    """Rows to a table through the driver: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, conn, dialect: str):
        self.raw = conn.connection.driver_connection
        self.dialect = dialect
        self.rows = 0

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        self.rows += len(rows)
        if self.dialect == "postgresql":
            with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _ in columns)
        self.raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                             [tuple(_sqlite(v) for v in row) for row in rows])


def _sqlite(value):
    """What SQLAlchemy itself stores on SQLite: naive UTC text timestamps, ISO dates."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _profile(rng: random.Random) -> str:
    roll = rng.random()
    return "on_time" if roll < 0.85 else "irregular" if roll < 0.94 else "poor" if roll < 0.99 else "above"


DISPENSING_COLS = ["id", "patient_id", "prescription_id", "drug_id", "strength", "quantity", "days_supply",
                   "dispensed_on", "organisation_id", "recorded_by_id", "created_at", "confirmed_duplicate"]
CHECKIN_COLS = ["id", "patient_id", "period_key", "sequence", "scheduled_at", "closes_at", "channel", "status",
                "phase", "current_index", "reask_count", "call_attempts", "started_at", "completed_at",
                "closed_at", "created_at", "updated_at"]
ANSWER_COLS = ["id", "checkin_id", "patient_id", "item_code", "raw_text", "value", "parsed", "red_flag", "answered_at",
               "source"]
REPORT_COLS = ["id", "patient_id", "professional_id", "reported_on", "assessment", "created_at"]


def seed_history(today: date, rng_seed: int = 5) -> dict:
    """Two years of dispensings, weekly check-ins and some reports for every seeded patient."""
    from app.extensions import db

    started = time.perf_counter()
    conn = db.session.connection()
    dialect = conn.dialect.name
    start = today - timedelta(days=HISTORY_DAYS)
    conn.execute(text("UPDATE prescription SET start_date = :start"), {"start": start})
    rxs = conn.execute(text(
        "SELECT id, patient_id, drug_id, dose, frequency_per_day, days_on, days_off FROM prescription "
        "ORDER BY patient_id")).all()
    pharmacy = {pid: (prof, org) for pid, prof, org in conn.execute(text(
        "SELECT m.patient_id, p.id, p.organisation_id FROM care_team_member m JOIN professional p "
        "ON p.id = m.professional_id WHERE p.role = 'community_pharmacist'"))}
    writer = Writer(conn, dialect)
    now = datetime.now(UTC)
    ids = defaultdict(int)

    def next_id(table: str) -> int:
        ids[table] += 1
        return ids[table]

    counts = defaultdict(int)
    for offset in range(0, len(rxs), CHUNK):
        dispensings, checkins, answers, reports = [], [], [], []
        for rx_id, pid, drug_id, dose, freq, on, off in rxs[offset:offset + CHUNK]:
            rng = random.Random(rng_seed * 1_000_003 + pid)
            profile = _profile(rng)
            prof, org = pharmacy.get(pid, (None, None))
            cycle = on + off if off else 30
            supply_days = on if off else 30
            every = 20 if profile == "above" else cycle
            day = start
            while prof is not None and day <= today:
                dispensings.append((next_id("dispensing"), pid, rx_id, drug_id, dose, supply_days * freq, supply_days,
                                    day, org, prof, now, False))
                late = {"on_time": rng.randint(-2, 2), "irregular": rng.randint(0, 10),
                        "poor": rng.randint(5, 30), "above": 0}[profile]
                day += timedelta(days=max(1, every + late))
            under_reports = profile == "poor" and rng.random() < 1 / 3
            hour = rng.choice([9, 10, 11, 14, 17])
            for week in range(1, HISTORY_DAYS // 7 + 1):
                at = datetime.combine(start + timedelta(days=7 * week), datetime.min.time(),
                                      tzinfo=UTC) + timedelta(hours=hour)
                if at > now:
                    break
                on_week = not off or (7 * week) % (on + off) < on
                cid = next_id("checkin")
                checkins.append((cid, pid, f"B{week}", "S2", at, at + timedelta(days=7), "sms", "completed",
                                 "on" if on_week else "off", 1, 0, 0, at, at, at, at, at))
                if on_week:
                    missed = 0 if under_reports else {"on_time": int(rng.random() < 0.1), "irregular": rng.randint(0, 3),
                                                       "poor": rng.randint(0, 6), "above": 0}[profile]
                    answers.append((next_id("answer"), cid, pid, "doses_missed", str(missed), str(missed), True, False,
                                    at, "sms"))
                else:
                    answers.append((next_id("answer"), cid, pid, "dose_in_break", "non", "false", True, False, at,
                                    "sms"))
            if prof is not None and rng.random() < 0.1:
                reports.append((next_id("report"), pid, prof, today - timedelta(days=rng.randint(0, 120)),
                                rng.choice(["good", "good", "good", "doubtful", "poor"]), now))
        writer.write("dispensing", DISPENSING_COLS, dispensings)
        writer.write("checkin", CHECKIN_COLS, checkins)
        writer.write("checkin_answer", ANSWER_COLS, answers)
        writer.write("adherence_report", REPORT_COLS, reports)
        counts["dispensing"] += len(dispensings)
        counts["checkin"] += len(checkins)
        counts["checkin_answer"] += len(answers)
        counts["adherence_report"] += len(reports)
    if dialect == "postgresql":
        for table, column in (("dispensing", "id"), ("checkin", "id"), ("checkin_answer", "id"),
                              ("adherence_report", "id")):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                              f"(SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)"))
    db.session.commit()
    _analyze(db)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return dict(counts)


def _analyze(db) -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


# --- Timing ----------------------------------------------------------------------------------

@contextmanager
def phase_timers():
    """Wrap the job's steps to time them (the job itself is unchanged)."""
    from app.adherence import tasks

    spent = defaultdict(float)
    originals = {}

    def wrap(name, label):
        original = getattr(tasks, name)
        originals[name] = original

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0
        setattr(tasks, name, timed)

    for name, label in (("read_population", "read"), ("simple_coverage", "read_pdc_sql"),
                        ("answer_stats", "read_answers"), ("load_inputs", "read"), ("measure_supply", "compute"),
                        ("simple_night", "compute"),
                        ("finish", "compute"),
                        ("lock_patients", "write_lock"), ("snapshot_stamps", "write_check"),
                        ("recent_adherence_alerts", "write_check"), ("upsert_snapshots", "write"),
                        ("raise_findings", "alerting")):
        wrap(name, label)
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(tasks, name, original)


RUNS = (("first night", 0), ("rerun, same night", 0), ("next night", 1))


def _pg_cpu() -> dict[int, float]:
    """CPU seconds used so far by each server process of this database (Linux ``/proc``): a
    measure of the work done that the machine's other load does not inflate."""
    from app.extensions import db

    pids = db.session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    db.session.rollback()
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def _cpu_used(before_pg: dict[int, float], before_py: float) -> dict:
    after = _pg_cpu()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_postgres": round(sum(t - before_pg.get(pid, 0.0) for pid, t in after.items()), 2),
            "cpu_python": round(usage.ru_utime + usage.ru_stime - before_py, 2)}


def time_recompute() -> list[dict]:
    """Three runs: the first (every finding becomes an alert), a rerun the same night (snapshots
    updated in place, nothing raised), the next night (new snapshots, alerts deduplicated)."""
    from app.adherence.tasks import recompute_adherence
    from app.extensions import db

    now = datetime.now(UTC)
    out = []
    for label, days_later in RUNS:
        pg = _pg_cpu() if db.engine.dialect.name == "postgresql" else {}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        py = usage.ru_utime + usage.ru_stime
        with phase_timers() as spent:
            t0 = time.perf_counter()
            result = recompute_adherence(now + timedelta(days=days_later))
            total = time.perf_counter() - t0
        cpu = _cpu_used(pg, py) if pg else {}
        db.session.remove()
        out.append({"run": label, "seconds": round(total, 2), **{k: round(v, 2) for k, v in spent.items()}, **cpu,
                    **{k: result[k] for k in ("patients", "snapshots", "alerts", "batches", "python_path")}})
    return out


def run(kind: str, patients: int, reuse: bool) -> dict:
    from flask_migrate import upgrade

    from bench.seed import seed

    if kind == "postgres":
        url = pg_url(create=not reuse)
    else:
        if not reuse:
            SQLITE_PATH.unlink(missing_ok=True)
        url = f"sqlite:///{SQLITE_PATH}"
    app = make_app(url)
    info: dict = {"db": kind}
    with app.app_context():
        from app.extensions import db

        if not reuse:
            upgrade(revision="heads")
            base = seed(patients)
            info["seed_base_seconds"] = round(base.seconds, 1)
            info["history"] = seed_history(date.today())
        else:
            upgrade(revision="heads")  # a database seeded before the latest migrations
            # Start from no adherence output at all, so the first run is a first night again.
            db.session.execute(text("DELETE FROM adherence_snapshot"))
            db.session.execute(text("DELETE FROM alert_action WHERE alert_id IN "
                                    "(SELECT id FROM alert WHERE source = 'adherence')"))
            db.session.execute(text("DELETE FROM alert WHERE source = 'adherence'"))
            db.session.commit()
            _analyze(db)
        info["counts"] = {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in
                          ("patient", "prescription", "dispensing", "checkin", "checkin_answer", "adherence_report")}
        db.session.commit()
        info["runs"] = time_recompute()
        db.engine.dispose()
    return info


def markdown(results: list[dict], load: str) -> str:
    intro = ("`recompute_adherence` (the nightly job: every active patient's PDC over 30/90 days and since the "
             "start, self-report and professional assessment, snapshots upserted, findings raised as deduplicated "
             "alerts), measured by `bench/bench_adherence.py` on a synthetic pilot with two years of history. "
             f"Machine: 2 cores, shared with other work during the run ({load}). Target: < {TARGET_SECONDS:.0f} s "
             "on PostgreSQL.")
    lines = ["## Adherence recompute", "", intro, ""]
    for r in results:
        c = r["counts"]
        lines.append(f"**{r['db']}**: {c['patient']:,} patients, {c['dispensing']:,} dispensings, "
                     f"{c['checkin']:,} check-ins, {c['checkin_answer']:,} answers, {c['adherence_report']:,} reports.")
        lines.append("")
        lines.append("| run | total (s) | read | PDC SQL | answers | compute | lock + check | upsert | alerting "
                     "| snapshots | alerts raised | CPU PostgreSQL (s) | CPU Python (s) |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for x in r["runs"]:
            lock_check = round(x.get("write_lock", 0) + x.get("write_check", 0), 2)
            lines.append(f"| {x['run']} | **{x['seconds']}** | {x.get('read', 0)} | {x.get('read_pdc_sql', 0)} | "
                         f"{x.get('read_answers', 0)} | {x.get('compute', 0)} | {lock_check} | {x.get('write', 0)} | "
                         f"{x.get('alerting', 0)} | {x['snapshots']:,} | {x['alerts']:,} | "
                         f"{x.get('cpu_postgres', '-')} | {x.get('cpu_python', '-')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true",
                        help="time again on the database already seeded (its adherence output is cleared first)")
    parser.add_argument("--write", action="store_true", help="append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    kinds = ("postgres", "sqlite") if args.db == "both" else (args.db,)
    results = []
    for kind in kinds:
        print(f"{kind}: {'reusing' if args.reuse else 'seeding'} ...", file=sys.stderr, flush=True)
        info = run(kind, args.patients, args.reuse)
        print(info, file=sys.stderr, flush=True)
        results.append(info)

    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    text_out = markdown(results, load)
    print(text_out)
    if args.write:
        path = ROOT / "docs" / "benchmarks.md"
        path.parent.mkdir(exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(("\n" if path.exists() and path.stat().st_size else "") + text_out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
