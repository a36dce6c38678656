"""Time to the first urgent message behind a backlog of routine texts (the outbox's priority lanes).

Queues N routine SMS in a fresh database (schema from the migrations), starts the real dispatcher
(``flask outbox dispatch --time-budget 0``) in a subprocess against a FakeTwilio served by this
process, waits until the routine batch is leaving, then, several times, commits an urgent pair (a
safety reply and a page, as a red answer does) and measures from that commit to the moment the fake
accepted each message. Without lanes the pair would wait for the whole backlog (N / rate seconds).

    .venv/bin/python bench/bench_urgent.py                                # 2,000 and 20,000 at 1/s, SQLite
    .venv/bin/python bench/bench_urgent.py --rate 5 --database-url postgresql+psycopg://.../oncolink_bench_urgent
    .venv/bin/python bench/bench_urgent.py --append docs/benchmarks.md

The PostgreSQL database given is emptied (``DROP SCHEMA public CASCADE``) first: give it a
database of its own, never a shared one.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from tests.twilio_fake import FakeTwilio  # noqa: E402

SID = "AC" + "ce" * 16
TOKEN = "bench-token-urgent-0123456789"
SENDER = "+33700000043"
PUBLIC = "https://oncolink.bench.invalid"


@dataclass
class Result:
    database: str
    rate: float
    backlog: int
    first_s: list[float]
    both_s: list[float]
    routine_rate: float

    def row(self) -> str:
        return (f"| {self.database} | {self.rate:g} | {self.backlog:,} | {len(self.first_s)} | "
                f"{statistics.median(self.first_s):.2f} | {max(self.first_s):.2f} | "
                f"{statistics.median(self.both_s):.2f} | {max(self.both_s):.2f} | "
                f"{self.backlog / self.rate:,.0f} | {self.routine_rate:.2f} |")


HEADER = ("| database | rate (msg/s) | routine backlog | urgent pairs | first urgent: median (s) | max (s) "
          "| both of the pair: median (s) | max (s) | without lanes: backlog / rate (s) | routine rate meanwhile (msg/s) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _app(url: str):
    from app import create_app

    return create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})


def prepare(url: str, backlog: int) -> None:
    from flask_migrate import upgrade

    from app.extensions import db
    from app.notifications.outbox import enqueue_sms_rows

    app = _app(url)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        for start in range(0, backlog, 5000):
            enqueue_sms_rows([dict(to=f"+336{20000000 + i}", body=f"Routine {i:05d}", idempotency_key=f"r:{i}",
                                   purpose="checkin") for i in range(start, min(backlog, start + 5000))])
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE outbox_entry"))
        db.engine.dispose()


def start_dispatcher(url: str, fake: FakeTwilio, rate: float) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(ONCOLINK_ENV="testing", TEST_DATABASE_URL=url, ONCOLINK_SMS_PROVIDER="twilio",
               ONCOLINK_TWILIO_ACCOUNT_SID=SID, ONCOLINK_TWILIO_AUTH_TOKEN=TOKEN, ONCOLINK_TWILIO_FROM_NUMBER=SENDER,
               ONCOLINK_TWILIO_API_BASE_URL=fake.base_url, ONCOLINK_PUBLIC_BASE_URL=PUBLIC,
               ONCOLINK_OUTBOX_RATE_PER_SECOND=str(rate))
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "dispatch", "--time-budget", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def run_one(url: str, label: str, backlog: int, rate: float, pairs: int) -> Result:
    prepare(url, backlog)
    from app.extensions import db
    from app.notifications.outbox import PRIORITY_URGENT, enqueue_sms

    app = _app(url)
    firsts, boths = [], []
    with FakeTwilio(SID, TOKEN) as fake, app.app_context():
        proc = start_dispatcher(url, fake, rate)
        try:
            _wait(lambda: len(fake.messages) >= 3, 60)
            started, routine_before = time.monotonic(), len(fake.messages)
            for n in range(pairs):
                enqueue_sms(to=f"+3361100{n:04d}", body=f"Consigne {n}", idempotency_key=f"safety:{n}",
                            purpose="sms_reply", priority=PRIORITY_URGENT)
                enqueue_sms(to=f"+3361200{n:04d}", body=f"Astreinte {n}", idempotency_key=f"page:{n}",
                            purpose="page", priority=PRIORITY_URGENT)
                db.session.commit()
                committed = datetime.now(UTC)
                bodies = {f"Consigne {n}", f"Astreinte {n}"}
                _wait(lambda b=bodies: b <= {m["body"] for m in fake.messages}, 120)
                stamps = sorted(m["created_at"] for m in fake.messages if m["body"] in bodies)
                firsts.append((stamps[0] - committed).total_seconds())
                boths.append((stamps[-1] - committed).total_seconds())
                time.sleep(max(1.0, 3.0 / rate))  # let the routine lane take the rate again
            routine = [m for m in fake.messages if m["body"].startswith("Routine")]
            routine_rate = (len(routine) - routine_before) / (time.monotonic() - started)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            db.engine.dispose()
    return Result(label, rate, backlog, firsts, boths, routine_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlogs", default="2000,20000")
    parser.add_argument("--rate", type=float, action="append", help="repeatable (default 1)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--database-url", action="append", help="repeatable; 'sqlite' (default): a temporary file")
    parser.add_argument("--append", type=Path, help="append a section to this file")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="oncolink-bench-urgent-")
    results = []
    for url in args.database_url or ["sqlite"]:
        label = "PostgreSQL" if url.startswith("postgresql") else "SQLite (file, WAL)"
        for rate in args.rate or [1.0]:
            for n, backlog in enumerate(int(b) for b in args.backlogs.split(",")):
                run_url = f"sqlite:///{tmp}/urgent-{rate:g}-{n}.db" if url == "sqlite" else url
                result = run_one(run_url, label, backlog, rate, args.pairs)
                results.append(result)
                print(result.row(), flush=True)
    table = "\n".join([HEADER] + [r.row() for r in results])
    print()
    print(table)
    if args.append:
        section = (
            "\n## Urgent lane: time to the first urgent message behind a backlog\n\n"
            f"`bench/bench_urgent.py --backlogs {args.backlogs} --pairs {args.pairs}`"
            f"{''.join(f' --rate {r:g}' for r in args.rate or [])}: the routine backlog is queued, one "
            "`flask outbox dispatch` subprocess sends it at the configured rate through the real Twilio SDK "
            "to the FakeTwilio of the bench process; once it is leaving, an urgent pair (a safety reply and "
            "a page) is committed, and the time from that commit to the fake's acceptance of each is "
            "measured, several pairs one after the other. Defaults: OUTBOX_URGENT_RESERVE 0.1, "
            "OUTBOX_URGENT_POLL_SECONDS 0.5, OUTBOX_SEND_WORKERS 4.\n\n"
            f"Machine: {os.cpu_count()} cores shared with other work (load average {os.getloadavg()[0]:.1f} at "
            f"the end), Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.\n\n" + table + "\n")
        with args.append.open("a", encoding="utf-8") as out:
            out.write(section)
        print(f"\nappended to {args.append}")


if __name__ == "__main__":
    main()
