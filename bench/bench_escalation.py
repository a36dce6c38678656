"""Time one ``escalate_alerts`` pass over 10,000 open red and orange alerts on 45 sites.

    .venv/bin/python -m bench.bench_escalation --db sqlite
    .venv/bin/python -m bench.bench_escalation --db postgres --append docs/benchmarks.md

A fresh database (SQLite: a temporary file; PostgreSQL: the database ``helper_oncall_bench``,
dropped and created here), the schema from the migrations, the synthetic pilot of
``bench.seed`` (15,000 patients on 45 sites), then, written set-based:

* phones for the hospital staff; at each site one oncologist on call now, except at every
  ninth site, whose rota has a gap now (its red alerts go to the fallback);
* a chain per site (on call, a coordinating nurse, a second oncologist) and a policy at two
  sites in three (ack 15 or 30 min; the others use the defaults);
* ``--alerts`` open alerts (``--red-share`` red, the rest orange) on random patients, plus
  ``--resolved`` closed ones as history; each open red alert has its latest page at level
  0-2, sent between now and ``ack_minutes + 1`` minutes ago, so about one in ``ack + 1``
  is due: what one pass a minute meets in steady state.

Measured, each in its own transaction: the steady-state pass (``--repeat`` times, rolled
back), the same pass committed through the job (``app.triage.tasks.escalate_alerts``), a
pass right after it (nothing due: the selection alone), and a backlog pass two hours later
(every red alert overdue: the scheduler was down). Statements are counted with a
``before_cursor_execute`` listener, transaction control left out.
"""
from __future__ import annotations

import argparse
import logging
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, insert, select, text, update
from sqlalchemy.engine import Engine, make_url

PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1/"
PG_BENCH_DB = "helper_oncall_bench"
PG_PROTECTED = frozenset({"postgres", "test", "template0", "template1", "helper_oncall"})
TARGET_S = 1.0
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@dataclass
class Timing:
    name: str
    due: int
    paged: int
    seconds: list[float]
    statements: int

    def row(self, database: str) -> str:
        median = statistics.median(self.seconds)
        spread = f"{median * 1000:.0f}" if len(self.seconds) == 1 else \
            f"{median * 1000:.0f} (max {max(self.seconds) * 1000:.0f}, n={len(self.seconds)})"
        verdict = "yes" if median < TARGET_S else "**no**"
        return (f"| {database} | {self.name} | {self.due:,} | {self.paged:,} | {spread} "
                f"| {self.statements:,} | {verdict} |")


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not _TX_CONTROL.match(statement):
            self.count += 1


@contextmanager
def counting(engine: Engine):
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


def database_url(kind: str, workdir: Path, pg_db: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'escalation.db'}"
    if pg_db in PG_PROTECTED:
        raise SystemExit(f"refusing to drop the database {pg_db!r}")
    admin = create_engine(PG_SERVER_URL + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
    admin.dispose()
    return PG_SERVER_URL + pg_db


def seed_oncall(now, *, n_alerts: int, red_share: float, n_resolved: int, rng: random.Random) -> dict:
    """Rota, chains, policies, alerts and their latest pages, written set-based. Returns counts."""
    from app.care.models import Patient, Professional, Site
    from app.core.roles import Role
    from app.extensions import db
    from app.notifications.models import OutboxEntry
    from app.triage.models import Alert
    from app.triage.oncall import EscalationPolicy, EscalationStep, OnCallShift
    from app.triage.paging import AlertPage

    session = db.session
    hospital = [str(Role.ONCOLOGIST), str(Role.COORDINATING_NURSE), str(Role.HOSPITAL_PHARMACIST)]
    staff = session.execute(select(Professional.id, Professional.site_id, Professional.role)
                            .where(Professional.role.in_(hospital)).order_by(Professional.id)).all()
    session.execute(update(Professional), [{"id": pid, "phone": f"+33639{pid:06d}"} for pid, _s, _r in staff])
    sites = session.scalars(select(Site.id).order_by(Site.id)).all()
    by_site: dict[int, dict[str, list[int]]] = {sid: {} for sid in sites}
    for pid, sid, role in staff:
        by_site[sid].setdefault(role, []).append(pid)
    shifts, steps, policies, ack = [], [], [], {}
    for index, sid in enumerate(sites):
        oncologists, nurses = by_site[sid][Role.ONCOLOGIST], by_site[sid][Role.COORDINATING_NURSE]
        gap = index % 9 == 8
        shifts.append({"site_id": sid, "professional_id": oncologists[0], "created_at": now,
                       "starts_at": now - timedelta(hours=13 if gap else 6),
                       "ends_at": now - timedelta(hours=1) if gap else now + timedelta(hours=6)})
        chain = [("on_call", None), ("professional", nurses[0])] + \
            ([("professional", oncologists[1])] if len(oncologists) > 1 else [])
        steps += [{"site_id": sid, "position": pos, "kind": kind, "professional_id": pid}
                  for pos, (kind, pid) in enumerate(chain)]
        ack[sid] = (15, 30, 30)[index % 3]
        if index % 3 != 2:
            policies.append({"site_id": sid, "ack_minutes": ack[sid], "fallback_phone": f"+3347200{index:04d}",
                             "fallback_label": "Standard", "updated_at": now})
    session.execute(insert(OnCallShift), shifts)
    session.execute(insert(EscalationStep), steps)
    session.execute(insert(EscalationPolicy), policies)

    patients = session.execute(select(Patient.id, Patient.site_id)).all()
    alerts, pages, outbox = [], [], []
    for n in range(n_alerts + n_resolved):
        pid, sid = rng.choice(patients)
        alert_id = n + 1
        is_open = n < n_alerts
        red = rng.random() < red_share
        created = now - timedelta(minutes=rng.uniform(1, 60 * 24 * (1 if is_open else 90)))
        level = rng.randint(0, 2) if red and is_open else 0
        alerts.append({
            "id": alert_id, "patient_id": pid, "site_id": sid, "severity": "red" if red else "orange",
            "source": "checkin", "reason_code": "bench", "summary": "bench",
            "status": "open" if is_open else "resolved",
            "due_at": created + timedelta(minutes=30), "created_at": created, "escalation_level": level,
            "resolved_at": None if is_open else created + timedelta(hours=2),
            "resolution_note": None if is_open else "bench", "detail": None,
        })
        if red and is_open:
            sent = now - timedelta(minutes=rng.uniform(0, ack[sid] + 1))
            outbox.append({"id": len(outbox) + 1, "idempotency_key": f"page:{alert_id}:{level}", "channel": "sms",
                           "to_number": "+33639000001", "body": "bench", "purpose": "page",
                           "ref": f"alert:{alert_id}", "state": "sent", "attempts": 1, "next_attempt_at": sent,
                           "created_at": sent, "sent_at": sent})
            pages.append({"alert_id": alert_id, "level": level, "target": "on_call", "professional_id": None,
                          "phone": "+33639000001", "outbox_id": len(outbox), "sent_at": sent,
                          "token_digest": f"{alert_id:064d}"})
    session.execute(insert(Alert), alerts)
    session.execute(insert(OutboxEntry), outbox)
    session.execute(insert(AlertPage), pages)
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequences on
        for table in ("alert", "outbox_entry"):
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))
    session.commit()
    session.execute(text("ANALYZE"))  # fresh statistics, as autovacuum would have by now
    session.commit()
    return {"sites": len(sites), "open": n_alerts, "open_red": len(pages), "resolved": n_resolved}


def timed_pass(name: str, now, repeat: int, *, commit: bool = False) -> Timing:
    from app.core.time import set_clock
    from app.extensions import db
    from app.triage.escalation import escalate_due
    from app.triage.tasks import escalate_alerts

    set_clock(now)
    seconds, result, statements = [], {}, 0
    for _ in range(repeat):
        db.session.rollback()
        with counting(db.engine) as counter:
            started = time.perf_counter()
            if commit:
                result = escalate_alerts(now)
            else:
                result = escalate_due(now)
            seconds.append(time.perf_counter() - started)
        statements = counter.count
        if not commit:
            db.session.rollback()
    return Timing(name, result["due"], result["paged"], seconds, statements)


def run(kind: str, args) -> tuple[list[Timing], dict, str]:
    from flask_migrate import upgrade

    from app import create_app
    from app.core.time import utcnow
    from app.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="oncolink-escalation-"))
    url = database_url(kind, workdir, args.pg_db)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    try:
        with app.app_context():
            upgrade()
            from bench.seed import seed

            seed(args.patients)
            now = utcnow().replace(microsecond=0)
            counts = seed_oncall(now, n_alerts=args.alerts, red_share=args.red_share, n_resolved=args.resolved,
                                 rng=random.Random(2026))
            version = db.session.execute(text("select sqlite_version()" if kind == "sqlite" else "show server_version")
                                         ).scalar()
            timings = [
                timed_pass("steady state (pass rolled back)", now, args.repeat),
                timed_pass("steady state, committed by the job", now, 1, commit=True),
                timed_pass("next pass, nothing due", now, args.repeat),
                timed_pass("backlog: 2 h without a pass", now + timedelta(hours=2), 1),
            ]
            db.session.remove()
            db.engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if kind == "postgres" and not args.keep:
            admin = create_engine(PG_SERVER_URL + "postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()
    return timings, counts, f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'} {version}"


NOTES = (
    "Steady state is what the job meets each minute: the alerts whose latest page passed the site's "
    "acknowledgement delay since the previous pass. The selection is one query whatever the number of "
    "open alerts (2 statements when nothing is due); each page then costs the transport's "
    "`enqueue_sms` (look-up of the idempotency key, savepoint, insert), and the pages, history and "
    "audit rows of the pass are written together. The backlog row (the scheduler down for two hours, "
    "every red alert overdue at once) misses the 1 s target: its time is almost all the per-message "
    "`enqueue_sms`; a bulk enqueue in the transport would make that pass set-based too."
)
HEADER = ("| database | pass | alerts due | pages written | time ms (median) | SQL statements | < 1 s |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), action="append")
    parser.add_argument("--patients", type=int, default=15_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--red-share", type=float, default=0.3)
    parser.add_argument("--resolved", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-db", default=PG_BENCH_DB)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--append", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args(argv)
    logging.getLogger("oncolink").setLevel(logging.WARNING)
    lines, failed = [HEADER], False
    counts = {}
    for kind in args.db or ["sqlite"]:
        timings, counts, label = run(kind, args)
        for timing in timings:
            lines.append(timing.row(label))
            failed |= timing.name.startswith("steady") and statistics.median(timing.seconds) >= TARGET_S
    table = "\n".join(lines)
    setup = (f"{counts.get('sites', 45)} sites, {args.patients:,} patients, {args.alerts:,} open alerts "
             f"({counts.get('open_red', 0):,} red, the rest orange) and {args.resolved:,} resolved ones; "
             f"machine: {platform.machine()}, {_cpus()} CPU, Python {platform.python_version()}.")
    print(setup)
    print(table)
    if args.append:
        with args.append.open("a", encoding="utf-8") as out:
            out.write(f"\n## Escalation\n\n`python -m bench.bench_escalation {' '.join(argv or sys.argv[1:])}`: "
                      f"one `escalate_alerts` pass; {setup}\n\n{table}\n\n{NOTES}\n")
    return 1 if failed else 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
