"""Time the dashboard and the patient page at several database sizes, and count their SQL statements.

    .venv/bin/python -m bench.bench_pages --db sqlite --sizes 500,50000 --repeat 30
    .venv/bin/python -m bench.bench_pages --db postgres --sizes 500,50000 --repeat 30

For each size: a fresh database (SQLite: a temporary file; PostgreSQL: the database
``oncolink_bench``, dropped and created here), the schema from the migrations, the
synthetic pilot from ``bench.seed``, a sign-in through the real login form as a
coordinating nurse of the largest site, then each page requested ``--warmup`` times
and measured ``--repeat`` times with the Flask test client (the whole request: routing,
session, queries, audit row, commit, template). Statements are counted with a
``before_cursor_execute`` listener, leaving out transaction control (SQLite's explicit
``BEGIN``), so both databases count alike.

Prints a Markdown table and writes it to ``bench/results/pages-<db>.md``. Exits 1 if a
page's statement count differs between sizes (or between repeats).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from bench.seed import BENCH_PASSWORD, SeedResult, seed
from bench.what_if import EXPERIMENTS, apply_all

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1/"
PG_BENCH_DB = "oncolink_bench"
# Databases this script must never drop, whatever it is told.
PG_PROTECTED = frozenset({"postgres", "test", "root", "template0", "template1"})
TARGET_MS = 150.0
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_PATIENT_LINK = re.compile(rb'href="/patients/\d+"')


class Timed:
    """Median, 95th percentile and statement counts of a page's timed requests."""

    times_ms: list[float]
    statements: set[int]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)  # nearest rank
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def statement_count(self) -> str:
        return "/".join(str(n) for n in sorted(self.statements))


@dataclass
class PageResult(Timed):
    name: str
    path: str
    size: int
    statements: set[int]
    times_ms: list[float]
    rows: int | None
    slowest: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class SizeRun:
    size: int
    seeded: SeedResult
    pages: list[PageResult]


class StatementLog:
    """Every statement the engine sends, with its duration (transaction control left out)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries: list[tuple[str, float]] = []
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not _TX_CONTROL.match(statement):
            self.entries.append((statement, (time.perf_counter() - self._started) * 1000))

    def reset(self) -> None:
        self.entries = []

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


@contextmanager
def fresh_database(kind: str, pg_server_url: str, keep: bool, *, name: str = PG_BENCH_DB) -> Iterator[str]:
    """Yield the URL of a new, empty database (PostgreSQL: ``name``, dropped and created; SQLite: a
    file in a temporary folder); drop it afterwards unless ``keep``."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="oncolink-bench-"))
        try:
            yield f"sqlite:///{folder / 'bench.db'}"
        finally:
            if keep:
                print(f"kept {folder / 'bench.db'}", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return
    server = make_url(pg_server_url)
    if name in PG_PROTECTED or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"refusing to drop and create the database {name!r}")
    # CREATE/DROP DATABASE run from the maintenance database; nothing is written there.
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            if keep:
                print(f"kept database {name}", file=sys.stderr)
            else:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def make_app(url: str):
    from app import create_app

    return create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": True})


def build(app, size: int) -> SeedResult:
    from flask_migrate import upgrade

    from app.extensions import db

    with app.app_context():
        upgrade()
        result = seed(size)
        db.session.remove()
    return result


def login(client, email: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if not match:
        raise RuntimeError("no CSRF token on the login page")
    resp = client.post("/login", data={"email": email, "password": BENCH_PASSWORD, "csrf_token": match[1]})
    if resp.status_code != 302:
        raise RuntimeError(f"login failed with {resp.status_code}")


def pages_for(seeded: SeedResult, prefix: str) -> list[tuple[str, str]]:
    return [
        ("Dashboard, first page", "/"),
        (f"Search `q={prefix}`", f"/?q={prefix}"),
        ("Sequence S2, page 3", "/?sequence=S2&page=3"),
        ("Patient page", f"/patients/{seeded.probe_patient_id}"),
    ]


def measure(app, seeded: SeedResult, *, repeat: int, warmup: int, prefix: str,
            show_sql: bool) -> list[PageResult]:
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    log = StatementLog(engine)
    client = app.test_client()
    login(client, seeded.nurse_email)
    results = []
    try:
        for name, path in pages_for(seeded, prefix):
            for _ in range(warmup):
                _get(client, path)
            result = PageResult(name, path, seeded.patients, set(), [], 0)
            per_statement: dict[str, list[float]] = defaultdict(list)
            for i in range(repeat):
                log.reset()
                started = time.perf_counter()
                resp = _get(client, path)
                result.times_ms.append((time.perf_counter() - started) * 1000)
                result.statements.add(len(log.entries))
                for statement, ms in log.entries:
                    per_statement[statement].append(ms)
                if i == 0:
                    result.rows = len(_PATIENT_LINK.findall(resp.data)) if path.startswith("/?") or path == "/" \
                        else None
                    if show_sql:
                        _print_sql(name, seeded.patients, log.entries)
            result.slowest = sorted(
                ((statistics.median(v), k) for k, v in per_statement.items()), reverse=True)[:3]
            results.append(result)
    finally:
        log.close()
    return results


def _get(client, path: str):
    resp = client.get(path)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {path} answered {resp.status_code}")
    return resp


def _print_sql(name: str, size: int, entries: list[tuple[str, float]]) -> None:
    print(f"\n-- {name} at {size:,} patients: {len(entries)} statements", file=sys.stderr)
    for statement, ms in entries:
        print(f"   {ms:7.2f} ms  {_short(statement, 160)}", file=sys.stderr)


def _short(statement: str, width: int) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def database_version(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {sqlite3.sqlite_version}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one().split()[0]
    finally:
        engine.dispose()


def render(db_kind: str, version: str, runs: list[SizeRun], args, mismatches: list[str]) -> str:
    out = [
        f"### {version} ({db_kind})",
        "",
        (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.warmup} warm-up requests, "
         f"then {args.repeat} timed requests per page; Python {sys.version.split()[0]}; "
         f"load average before the run {args.load_before:.2f}."),
        "",
    ]
    if args.what_if:
        out += ["**What-if run** (bench-only, not the product as it stands): " + "; ".join(
            f"`{name}`: {EXPERIMENTS[name].summary}" for name in args.what_if) + ".", ""]
    out += [
        "| Patients | Seeding | Patients at the largest site | Professionals | Care-team rows |",
        "|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        s = run.seeded
        out.append(f"| {s.patients:,} | {s.seconds:.1f} s ({s.rows:,} rows) | {s.largest_site_patients:,} "
                   f"| {s.professionals:,} | {s.care_team_members:,} |")
    out += [
        "",
        "| Page | Patients | Rows shown | SQL statements | Median (ms) | p95 (ms) | Under 150 ms |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    names = [p.name for p in runs[0].pages]
    for i, name in enumerate(names):
        for run in runs:
            p = run.pages[i]
            ok = "yes" if p.median < TARGET_MS else "**no**"
            rows = "—" if p.rows is None else p.rows
            out.append(f"| {name} | {run.size:,} | {rows} | {p.statement_count} | {p.median:.1f} "
                       f"| {p.p95:.1f} | {ok} |")
    out += ["", "Statements per request by size: " + "; ".join(
        f"{name}: " + " → ".join(run.pages[i].statement_count for run in runs)
        for i, name in enumerate(names))]
    out.append("")
    out.append("Statement count constant across sizes: " + ("**no** — " + ", ".join(mismatches)
                                                            if mismatches else "yes"))
    if args.profile:
        out += ["", "Slowest statements (median ms) at the largest size:", ""]
        for p in runs[-1].pages:
            out.append(f"- {p.name}: " + "; ".join(f"{ms:.1f} ms `{_short(sql, 90)}`" for ms, sql in p.slowest))
    return "\n".join(out) + "\n"


def check_counts(runs: list[SizeRun]) -> list[str]:
    problems = []
    for i, page in enumerate(runs[0].pages):
        counts = [run.pages[i].statements for run in runs]
        if any(len(c) != 1 for c in counts) or len({min(c) for c in counts}) != 1:
            problems.append(f"{page.name} ({' → '.join(run.pages[i].statement_count for run in runs)})")
    return problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--sizes", default="500,50000", help="comma-separated patient counts")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--prefix", default="dur", help="search prefix for the search page")
    parser.add_argument("--pg-url", default=PG_SERVER_URL,
                        help=f"PostgreSQL server; the database used is always {PG_BENCH_DB}")
    parser.add_argument("--keep", action="store_true", help="keep the last database for inspection")
    parser.add_argument("--profile", action="store_true", help="report the slowest statements")
    parser.add_argument("--show-sql", action="store_true", help="print each page's statements")
    parser.add_argument("--what-if", action="append", default=[], choices=sorted(EXPERIMENTS),
                        help="measure a candidate change, applied in this process only (repeatable)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS_DIR.name}/")
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.repeat < 1 or not args.sizes:
        parser.error("need at least one size and one repeat")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_before = os.getloadavg()[0]  # another busy process skews every number: say so
    logging.getLogger("alembic").setLevel(logging.WARNING)
    runs: list[SizeRun] = []
    version = ""
    for n, size in enumerate(args.sizes):
        keep = args.keep and n == len(args.sizes) - 1
        with fresh_database(args.db, args.pg_url, keep) as url:
            version = version or database_version(url)
            app = make_app(url)
            apply_all(app, args.what_if)
            seeded = build(app, size)
            print(f"seeded {seeded.patients:,} patients ({seeded.rows:,} rows) in {seeded.seconds:.1f} s",
                  file=sys.stderr)
            pages = measure(app, seeded, repeat=args.repeat, warmup=args.warmup, prefix=args.prefix,
                            show_sql=args.show_sql)
            runs.append(SizeRun(size, seeded, pages))
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()
    mismatches = check_counts(runs)
    report = render(args.db, version, runs, args, mismatches)
    print(report)
    if not args.no_write:
        RESULTS_DIR.mkdir(exist_ok=True)
        suffix = "".join(f"+{name}" for name in args.what_if)
        (RESULTS_DIR / f"pages-{args.db}{suffix}.md").write_text(report, encoding="utf-8")
    if mismatches:
        print("FAIL: statement count changes with size: " + ", ".join(mismatches), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
