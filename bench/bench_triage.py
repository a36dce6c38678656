"""Time the nurse's triage queue and its live counts at two alert volumes, and count their SQL statements.

    .venv/bin/python -m bench.bench_triage --db both --alerts 100,10000 --repeat 30

For each alert volume: a fresh database (SQLite: a temporary file; PostgreSQL: the
database ``oncolink_bench_triage``, dropped and created here), the schema from the
migrations, ~15,000 patients over 45 sites from ``bench.seed``, then N unresolved
alerts inserted set-based (Core ``insert()`` in batches on SQLite, ``COPY`` on
PostgreSQL): 80 % at the largest site (where the signed-in coordinating nurse works),
the rest spread over the other sites; severities red 5 %, orange 20 %, yellow 50 %,
info 25 %; alerts come in groups of 1 to 3 per patient (``group_id`` = the first
alert's id, so a singleton has ``group_id = id``); created over the last 10 days with
a deadline by severity, so some are overdue. Then ``GET /triage`` (first page) and
``GET /triage/counts`` are requested ``--warmup`` times and measured ``--repeat``
times with the Flask test client after a sign-in through the real login form.
Statements are counted with the ``before_cursor_execute``/``after_cursor_execute``
listener of ``bench.bench_pages`` (transaction control left out).

Prints a Markdown table, writes ``bench/results/triage-<db>.md``; with ``--db both``
also appends (or replaces) the ``## Triage queue`` section at the end of
``docs/benchmarks.md``. Exits 1 if a page's statement count differs between alert
volumes (or between repeats); ``--show-sql`` prints each page's statements.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from bench.bench_pages import (
    PG_SERVER_URL,
    StatementLog,
    Timed,
    _get,
    _short,
    build,
    database_version,
    fresh_database,
    login,
    make_app,
)
from bench.seed import SeedResult, _write

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Triage queue"
PG_BENCH_DB = "oncolink_bench_triage"
TARGET_MS = 150.0
SEVERITIES = [("red", 0.05, timedelta(hours=1)), ("orange", 0.20, timedelta(hours=24)),
              ("yellow", 0.50, timedelta(days=7)), ("info", 0.25, timedelta(days=14))]
REASONS = {"red": ("fever_38_5", "Fièvre ≥ 38,5 °C"), "orange": ("diarrhoea_g2", "Diarrhée grade 2"),
           "yellow": ("fatigue_g1", "Fatigue grade 1"), "info": ("missed_dose", "Prise oubliée")}
_ALERT_ROW = re.compile(rb'data-alert="\d+"')


@dataclass
class PageResult(Timed):
    name: str
    path: str
    statements: set[int]
    times_ms: list[float]
    rows: int | None
    sql: list[str]


@dataclass
class Run:
    alerts: int
    seeded: SeedResult
    at_site: int
    groups_at_site: int
    overdue_at_site: int
    insert_seconds: float
    pages: list[PageResult]


def insert_alerts(app, seeded: SeedResult, n_alerts: int, *, rng_seed: int = 2026) -> tuple[int, int, int, float]:
    """Write ``n_alerts`` unresolved alerts set-based; return (at the nurse's site, groups there, overdue there, s)."""
    from app.care.models import Patient
    from app.core.time import utcnow
    from app.extensions import db
    from app.triage.models import Alert

    started = time.perf_counter()
    with app.app_context():
        by_site: dict[int, list[int]] = {}
        for pid, sid in db.session.execute(select(Patient.id, Patient.site_id).order_by(Patient.id)):
            by_site.setdefault(sid, []).append(pid)
        home = seeded.largest_site_id
        others = sorted(s for s in by_site if s != home)
        rng = random.Random(rng_seed)
        now = utcnow()
        rows: list[dict] = []
        next_id = 1
        groups_home = overdue_home = 0
        home_cursor = 0
        while len(rows) < n_alerts:
            size = min(rng.choice((1, 1, 1, 2, 3)), n_alerts - len(rows))
            if rng.random() < 0.8:
                site = home
                patients = by_site[home]
                patient = patients[home_cursor % len(patients)]  # spread over the site's patients
                home_cursor += 1
                groups_home += 1
            else:
                site = rng.choice(others)
                patient = rng.choice(by_site[site])
            group_id = next_id
            created = now - timedelta(minutes=rng.randint(5, 10 * 24 * 60))
            for k in range(size):
                sev = rng.choices([s[0] for s in SEVERITIES], [s[1] for s in SEVERITIES])[0]
                delay = next(d for s, _, d in SEVERITIES if s == sev)
                at = created + timedelta(minutes=10 * k)
                due = at + delay
                code, summary = REASONS[sev]
                if site == home and due < now:
                    overdue_home += 1
                rows.append({
                    "id": next_id, "patient_id": patient, "site_id": site, "severity": sev,
                    "source": "checkin", "reason_code": code, "summary": summary, "detail": None,
                    "checkin_id": None, "status": "open", "owner_id": None, "due_at": due,
                    "created_at": at, "acknowledged_at": None, "acknowledged_by_id": None,
                    "resolved_at": None, "resolved_by_id": None, "resolution_note": None,
                    "escalation_level": 1 if due < now and sev in ("red", "orange") else 0,
                    "group_id": group_id, "rule_id": None,
                })
                next_id += 1
        conn = db.session.connection()
        _write(conn, Alert.__table__, rows)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('alert', 'id'), "
                              "(SELECT coalesce(max(id), 0) + 1 FROM alert), false)"))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE alert"))
        db.session.remove()
    at_home = sum(1 for r in rows if r["site_id"] == home)
    return at_home, groups_home, overdue_home, time.perf_counter() - started


PAGES = [("`GET /triage` (first page)", "/triage"), ("`GET /triage/counts` (JSON)", "/triage/counts")]


def measure(app, seeded: SeedResult, *, repeat: int, warmup: int, show_sql: bool, label: int) -> list[PageResult]:
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    log = StatementLog(engine)
    client = app.test_client()
    login(client, seeded.nurse_email)
    results = []
    try:
        for name, path in PAGES:
            for _ in range(warmup):
                _get(client, path)
            result = PageResult(name, path, set(), [], None, [])
            for i in range(repeat):
                log.reset()
                started = time.perf_counter()
                resp = _get(client, path)
                result.times_ms.append((time.perf_counter() - started) * 1000)
                result.statements.add(len(log.entries))
                if i == 0:
                    result.sql = [s for s, _ in log.entries]
                    if path == "/triage":
                        result.rows = len(_ALERT_ROW.findall(resp.data))
                    if show_sql:
                        print(f"\n-- {name} at {label:,} alerts: {len(log.entries)} statements", file=sys.stderr)
                        for statement, ms in log.entries:
                            print(f"   {ms:7.2f} ms  {_short(statement, 160)}", file=sys.stderr)
            results.append(result)
    finally:
        log.close()
    return results


def check_counts(runs: list[Run]) -> list[str]:
    problems = []
    for i, page in enumerate(runs[0].pages):
        counts = [run.pages[i].statements for run in runs]
        if any(len(c) != 1 for c in counts) or len({min(c) for c in counts}) != 1:
            problems.append(f"{page.name} ({' → '.join(run.pages[i].statement_count for run in runs)})")
    return problems


def statement_diff(runs: list[Run]) -> list[str]:
    """Statements (normalised) whose number of occurrences differs between the first and the last run."""
    out = []
    for i, page in enumerate(runs[0].pages):
        def tally(sqls):
            counts: dict[str, int] = {}
            for s in sqls:
                key = _short(re.sub(r"\b\d+\b", "N", s), 140)
                counts[key] = counts.get(key, 0) + 1
            return counts
        first, last = tally(page.sql), tally(runs[-1].pages[i].sql)
        for key in sorted(set(first) | set(last)):
            if first.get(key, 0) != last.get(key, 0):
                out.append(f"{page.name}: {first.get(key, 0)} → {last.get(key, 0)} × `{key}`")
    return out


def render(db_kind: str, version: str, runs: list[Run], args, mismatches: list[str]) -> str:
    out = [
        f"### {version} ({db_kind})",
        "",
        (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.warmup} warm-up requests, then "
         f"{args.repeat} timed requests per page; Python {sys.version.split()[0]}; load average before "
         f"the run {args.load_before:.2f}; {runs[0].seeded.patients:,} patients, "
         f"{runs[0].seeded.largest_site_patients:,} at the nurse's site."),
        "",
        "| Alerts (all sites) | At the nurse's site | Groups there | Overdue there | Alert insert |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        out.append(f"| {r.alerts:,} | {r.at_site:,} | {r.groups_at_site:,} | {r.overdue_at_site:,} "
                   f"| {r.insert_seconds:.1f} s |")
    out += [
        "",
        "| Page | Alerts | Lines shown | SQL statements | Median (ms) | p95 (ms) | Under 150 ms |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for i, (name, _path) in enumerate(PAGES):
        for r in runs:
            p = r.pages[i]
            ok = "yes" if p.median < TARGET_MS else "**no**"
            rows = "—" if p.rows is None else p.rows
            out.append(f"| {name} | {r.alerts:,} | {rows} | {p.statement_count} | {p.median:.1f} "
                       f"| {p.p95:.1f} | {ok} |")
    out += ["", "Statement count constant across alert volumes: "
            + ("**no** — " + ", ".join(mismatches) if mismatches else "yes")]
    diff = statement_diff(runs)
    if diff:
        out += ["", "Statements that differ between the smallest and the largest volume:", ""]
        out += [f"- {d}" for d in diff]
    return "\n".join(out) + "\n"


def run_db(kind: str, args) -> tuple[str, list[Run], list[str]]:
    runs: list[Run] = []
    version = ""
    for n, alerts in enumerate(args.alerts):
        keep = args.keep and n == len(args.alerts) - 1
        with fresh_database(kind, args.pg_url, keep, name=PG_BENCH_DB) as url:
            version = version or database_version(url)
            app = make_app(url)
            seeded = build(app, args.patients)
            at_site, groups, overdue, secs = insert_alerts(app, seeded, alerts)
            print(f"[{kind}] seeded {seeded.patients:,} patients in {seeded.seconds:.1f} s, "
                  f"{alerts:,} alerts ({at_site:,} at the nurse's site) in {secs:.1f} s", file=sys.stderr)
            pages = measure(app, seeded, repeat=args.repeat, warmup=args.warmup, show_sql=args.show_sql,
                            label=alerts)
            runs.append(Run(alerts, seeded, at_site, groups, overdue, secs, pages))
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()
    mismatches = check_counts(runs)
    return render(kind, version, runs, args, mismatches), runs, mismatches


def write_docs(command: str, reports: list[str], ok: bool) -> None:
    body = [
        SECTION,
        "",
        (f"`{command}`: for each volume a fresh database (schema from the migrations), ~15,000 patients over "
        "45 sites from `bench/seed.py`, then N unresolved alerts inserted set-based: 80 % at the largest "
        "site, where the signed-in coordinating nurse works, the rest over the other 44; red 5 %, "
        "orange 20 %, yellow 50 %, info 25 %; groups of 1–3 alerts per patient (`group_id` = first alert's "
        "id); created over the last 10 days with a deadline by severity (1 h, 24 h, 7 d, 14 d), so some are "
        "overdue. `GET /triage` (first page: one line per group, with call tasks, non-responders, "
        "undelivered messages and rota gaps, all empty here) and `GET /triage/counts` through the Flask "
        "test client, statements counted per request. Machine: 2 cores shared with other work."),
        "",
        "Statement count constant between 100 and 10,000 alerts: "
        + ("**yes**, on both databases." if ok else "**no** (see the list under the table)."),
        "",
    ]
    section = "\n".join(body) + "\n" + "\n".join(reports)
    current = DOCS.read_text(encoding="utf-8")
    idx = current.find("\n" + SECTION + "\n")
    if idx >= 0:  # a rerun replaces our own section, which is the last one
        current = current[: idx + 1]
    elif not current.endswith("\n"):
        current += "\n"
    DOCS.write_text(current + ("\n" if not current.endswith("\n\n") else "") + section, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_triage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--alerts", default="100,10000", help="comma-separated alert counts")
    parser.add_argument("--patients", type=int, default=15_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--pg-url", default=PG_SERVER_URL,
                        help=f"PostgreSQL server; the database used is always {PG_BENCH_DB}")
    parser.add_argument("--keep", action="store_true", help="keep the last database for inspection")
    parser.add_argument("--show-sql", action="store_true", help="print each page's statements")
    parser.add_argument("--no-write", action="store_true", help="write neither results/ nor docs/")
    args = parser.parse_args(argv)
    args.alerts = [int(s.replace("_", "")) for s in args.alerts.split(",") if s.strip()]
    if args.repeat < 1 or not args.alerts:
        parser.error("need at least one alert count and one repeat")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_before = os.getloadavg()[0]
    logging.getLogger("alembic").setLevel(logging.WARNING)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    reports, failed = [], []
    for kind in kinds:
        report, runs, mismatches = run_db(kind, args)
        print(report)
        reports.append(report)
        failed += [f"{kind}: {m}" for m in mismatches]
        if mismatches:
            for line in statement_diff(runs):
                print(f"[{kind}] {line}", file=sys.stderr)
        if not args.no_write:
            RESULTS_DIR.mkdir(exist_ok=True)
            (RESULTS_DIR / f"triage-{kind}.md").write_text(report, encoding="utf-8")
    if not args.no_write and args.db == "both":
        command = ("bench/bench_triage.py --db both --alerts " + ",".join(str(a) for a in args.alerts)
                   + f" --repeat {args.repeat}")
        write_docs(command, reports, not failed)
    if failed:
        print("FAIL: statement count changes with the number of alerts: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
