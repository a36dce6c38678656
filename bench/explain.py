"""Show the query plans of the slowest statements of one page, on a database kept by ``--keep``.

    .venv/bin/python -m bench.bench_pages --db postgres --sizes 50000 --repeat 1 --keep
    .venv/bin/python -m bench.explain --db postgres --path '/?q=dur'

Requests the page once as a coordinating nurse of the largest site, records every
SELECT with its parameters, then runs ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL
(``EXPLAIN QUERY PLAN`` on SQLite) for the ``--top`` slowest, in a transaction
that is rolled back.
"""
from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bench.bench_pages import PG_BENCH_DB, PG_SERVER_URL, login, make_app
from bench.seed import EMAIL_DOMAIN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--sqlite-path", help="the SQLite file printed by --keep")
    parser.add_argument("--pg-url", default=PG_SERVER_URL)
    parser.add_argument("--path", required=True, help="page to request, e.g. '/?q=dur' or 'probe' for the patient page")
    parser.add_argument("--top", type=int, default=2)
    args = parser.parse_args(argv)
    if args.db == "sqlite":
        if not args.sqlite_path:
            parser.error("--sqlite-path is required with --db sqlite")
        url = f"sqlite:///{args.sqlite_path}"
    else:
        url = make_url(args.pg_url).set(database=PG_BENCH_DB).render_as_string(hide_password=False)

    from app.care.models import Patient
    from app.extensions import db

    app = make_app(url)
    path = args.path
    with app.app_context():
        engine = db.engine
        if path == "probe":
            path = f"/patients/{db.session.scalar(select(Patient.id).where(Patient.mrn == 'B010000001'))}"
        db.session.remove()
    captured: list[tuple[float, str, object]] = []
    started = [0.0]

    def before(conn, cursor, statement, parameters, context, executemany):
        started[0] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append(((time.perf_counter() - started[0]) * 1000, statement, parameters))

    client = app.test_client()
    login(client, f"coordinating_nurse1.b01@{EMAIL_DOMAIN}")
    client.get(path)  # warm the caches first
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    client.get(path)
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)

    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        for ms, statement, parameters in sorted(captured, key=lambda c: c[0], reverse=True)[: args.top]:
            print(f"\n=== {ms:.1f} ms during the request\n{statement}\n--- parameters: {parameters}\n")
            for row in conn.exec_driver_sql(prefix + statement, parameters):
                print("  " + " | ".join(str(v) for v in row))
        conn.rollback()
    return 0


if __name__ == "__main__":
    sys.exit(main())
