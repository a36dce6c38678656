"""Outbox dispatch rate against the FakeTwilio, and a check that nothing goes out twice.

Queues N distinct SMS in a fresh database (schema from the migrations), then runs the
real dispatcher (``flask outbox dispatch``) in a subprocess, as the scheduler would,
against a FakeTwilio served by this process through the real Twilio SDK. The rate is
measured from the provider's side: first to last message the fake accepted.

    .venv/bin/python bench/bench_dispatch.py                      # 2,000 at 100/s, SQLite
    .venv/bin/python bench/bench_dispatch.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/bench_dispatch.py --append docs/benchmarks.md

The PostgreSQL database given is emptied (``DROP SCHEMA public CASCADE``) first: give it a
database of its own (e.g. ``oncolink_bench_dispatch``), never a shared one.
"""
from __future__ import annotations

import argparse
import collections
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text

from tests.twilio_fake import FakeTwilio

SID = "AC" + "be" * 16
TOKEN = "bench-token-0123456789abcdef"
SENDER = "+33700000042"
PUBLIC = "https://oncolink.bench.invalid"


@dataclass
class Result:
    database: str
    configured: str
    messages: int
    received: int
    duplicates: int
    not_sent: int
    provider_rate: float
    peak_1s: int
    dispatcher_s: float

    def row(self) -> str:
        return (f"| {self.database} | {self.configured} | {self.messages:,} | {self.received:,} | "
                f"{self.provider_rate:.1f} | {self.peak_1s} | {self.dispatcher_s:.1f} | {self.duplicates} | "
                f"{self.not_sent} |")


HEADER = ("| database | configured rate (msg/s) | queued | received by the fake | measured rate (msg/s) "
          "| most in any second | dispatcher run (s) | duplicates | not sent |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _make_app(url: str):
    from app import create_app

    return create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})


def prepare(url: str, count: int) -> None:
    """Fresh schema from the migrations, then ``count`` queued SMS with distinct bodies."""
    from flask_migrate import upgrade

    from app.extensions import db
    from app.notifications.outbox import enqueue_sms

    app = _make_app(url)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        for i in range(count):
            enqueue_sms(to=f"+3361{i % 200:08d}", body=f"Bench {i:05d}", idempotency_key=f"bench:{i}",
                        purpose="bench", ref=f"bench:{i}")
        db.session.commit()
        db.engine.dispose()


def dispatch(url: str, fake: FakeTwilio, rate: float) -> dict[str, float]:
    env = dict(os.environ)
    env.update(
        ONCOLINK_ENV="testing", TEST_DATABASE_URL=url, ONCOLINK_SMS_PROVIDER="twilio",
        ONCOLINK_TWILIO_ACCOUNT_SID=SID, ONCOLINK_TWILIO_AUTH_TOKEN=TOKEN,
        ONCOLINK_TWILIO_FROM_NUMBER=SENDER, ONCOLINK_TWILIO_API_BASE_URL=fake.base_url,
        ONCOLINK_PUBLIC_BASE_URL=PUBLIC, ONCOLINK_OUTBOX_RATE_PER_SECOND=str(rate),
    )
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "dispatch", "--time-budget", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    last = done.stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in (pair.split("=") for pair in last.split())}


def check(url: str, fake: FakeTwilio, count: int) -> tuple[int, int]:
    """(duplicates at the provider, rows not sent); also checks each row's SID."""
    from app.extensions import db
    from app.notifications.models import OutboxEntry

    received = fake.messages
    per_body = collections.Counter(m["body"] for m in received)
    duplicates = sum(n - 1 for n in per_body.values() if n > 1)
    sid_of = {m["body"]: m["sid"] for m in received}
    app = _make_app(url)
    with app.app_context():
        rows = db.session.execute(select(OutboxEntry.state, OutboxEntry.body, OutboxEntry.provider_sid)).all()
        not_sent = sum(1 for r in rows if r.state != "sent" or sid_of.get(r.body) != r.provider_sid)
        db.engine.dispose()
    return duplicates, not_sent + max(0, count - len(rows))


def provider_rate(fake: FakeTwilio) -> float:
    stamps = sorted(m["created_at"] for m in fake.messages)
    if len(stamps) < 2:
        return 0.0
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - 1) / span if span > 0 else float("inf")


def peak_per_second(fake: FakeTwilio) -> int:
    """The most messages the fake stamped within any one second (half-open window)."""
    stamps = sorted(m["created_at"] for m in fake.messages)
    peak, first = 0, 0
    for last, stamp in enumerate(stamps):
        while (stamp - stamps[first]).total_seconds() >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def run_one(url: str, label: str, count: int, rate: float) -> Result:
    prepare(url, count)
    with FakeTwilio(SID, TOKEN) as fake:
        stats = dispatch(url, fake, rate)
        duplicates, not_sent = check(url, fake, count)
        return Result(label, f"{rate:g}" if rate > 0 else "unlimited", count, len(fake.messages),
                      duplicates, not_sent, provider_rate(fake), peak_per_second(fake), stats["elapsed_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--database-url", action="append",
                        help="repeatable; 'sqlite' (the default) is a new temporary file per run")
    parser.add_argument("--ceiling", action="store_true", help="also run without a rate limit")
    parser.add_argument("--append", type=Path, help="append a '## Outbox dispatch' section to this file")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="oncolink-bench-dispatch-")
    urls = args.database_url or ["sqlite"]
    results = []
    for url in urls:
        label = "PostgreSQL" if url.startswith("postgresql") else "SQLite (file, WAL)"
        rates = [args.rate] + ([0.0] if args.ceiling else [])
        for n, rate in enumerate(rates):
            run_url = f"sqlite:///{tmp}/bench-{n}.db" if url == "sqlite" else url  # a fresh file each run
            result = run_one(run_url, label, args.messages, rate)
            results.append(result)
            print(result.row(), flush=True)
    table = "\n".join([HEADER] + [r.row() for r in results])
    print()
    print(table)
    if args.append:
        section = (
            "\n## Outbox dispatch\n\n"
            f"`bench/bench_dispatch.py --messages {args.messages} --rate {args.rate:g}"
            f"{' --ceiling' if args.ceiling else ''}`: {args.messages:,} distinct SMS queued, then one "
            "`flask outbox dispatch` subprocess sends them through the real Twilio SDK to the "
            "FakeTwilio (HTTP on 127.0.0.1, one connection per request) served by the bench process. "
            "The measured rate is taken at the provider: messages accepted, first to last. "
            "'not sent' counts rows not `sent` with the SID the fake gave; duplicates are bodies "
            "the fake received more than once.\n\n"
            f"Machine: {os.cpu_count()} cores shared with other work (load average "
            f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}. 'unlimited' shows the ceiling of one dispatcher here: "
            "sending threads (OUTBOX_SEND_WORKERS), results recorded in group commits. 'most in any "
            "second' is the largest number of messages the fake stamped within one second.\n\n"
            + table + "\n"
        )
        with args.append.open("a", encoding="utf-8") as out:
            out.write(section)
        print(f"\nappended to {args.append}")


if __name__ == "__main__":
    main()
