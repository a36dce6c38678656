"""Signed inbound SMS answers through gunicorn, against a bare Flask app served the same way.

    .venv/bin/python -m bench.bench_inbound --requests 5000 --concurrency 16

Setup (PostgreSQL database ``oncolink_bench_inbound``, dropped and created here): the
schema from the migrations, ``bench.seed`` with ``--patients`` patients, the app's own
``plan_checkins`` (no look-ahead) then ``start_due_checkins`` with the check-ins moved to
"due now" and a 24 h send window, so every SMS patient has one started check-in
(status ``sent``, ``item_codes`` chosen by the app). Voice patients are left out.

Then ``gunicorn -w 2 -b 127.0.0.1:<free port> wsgi:app`` with production settings from the
environment (PostgreSQL, Twilio provider with a bench token, ``PUBLIC_BASE_URL`` of a
made-up host that the client signs for), and ``--requests`` POSTs to
``/webhooks/twilio/sms`` from ``--concurrency`` client threads (``http.client``, one
connection per request: gunicorn's sync workers close it after each answer). Each POST has
a distinct MessageSid, the patient's phone as From, and a Body that answers the patient's
current item ("0", "non", "37,5", "120/80"); patients are visited round-robin, so one
patient's answers are never in flight together. The webhook only queues each message
(one INSERT, one commit); with no processor running during the load, this measures what
the webhook absorbs. Then the queue is read by the app's own ``process_queued`` (what the
scheduler's ``process-inbound`` job runs), timed, in this process: the rate at which answers
are recorded, graded and replied to (replies written to the outbox, not sent). Checks: every
POST 200, stored inbound messages = requests, every one read, answers stored = requests.
The same client then drives ``gunicorn -w 2 bench.inbound_app:app`` (constant TwiML, no
database). Submission stops after ``--max-seconds``.
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1/"
PG_DB = "oncolink_bench_inbound"
PUBLIC_BASE_URL = "https://oncolink.bench.invalid"
PATH = "/webhooks/twilio/sms"
TO_NUMBER = "+33700000000"
TARGET_RPS = 500.0
ANSWERS = {"yes_no": "non", "scale_0_3": "0", "count": "0", "temperature": "37,5",
           "blood_pressure": "120/80", "choice": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(url: str, n_patients: int) -> tuple[list[tuple[str, list[str]]], int]:
    """Seed, plan and start; returns [(phone, answers in item order)] and the inbound count."""
    from flask_migrate import upgrade

    from app import create_app
    from app.care.models import Patient
    from app.core.time import utcnow
    from app.extensions import db
    from app.notifications.models import Direction, Message
    from app.pathways.checkins.models import CheckIn, CheckInStatus
    from app.pathways.checkins.questionnaire import items_by_code
    from app.pathways.checkins.tasks import plan_checkins, start_due_checkins
    from bench.seed import seed

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "CHECKIN_PLAN_HORIZON_HOURS": 0,
                                 "CHECKIN_SEND_WINDOW_HOURS": 24})
    with app.app_context():
        upgrade()
        seed(n_patients)
        now = utcnow()
        planned = plan_checkins(now=now)
        db.session.execute(update(CheckIn).where(CheckIn.channel == "sms")
                           .values(scheduled_at=now - timedelta(hours=1), closes_at=now + timedelta(days=2)))
        db.session.commit()
        started = start_due_checkins(now=now)
        rows = db.session.execute(
            select(Patient.phone, CheckIn.item_codes)
            .join(Patient, Patient.id == CheckIn.patient_id)
            .where(CheckIn.status == CheckInStatus.SENT, CheckIn.channel == "sms")
            .order_by(CheckIn.id)).all()
        items = items_by_code({c for _, codes in rows for c in codes})
        convos = [(phone, [ANSWERS[str(items[c].answer_type)] for c in codes]) for phone, codes in rows]
        inbound = db.session.scalar(select(func.count()).select_from(Message).where(Message.direction == Direction.IN))
        print(f"setup: planned {planned}, started {started}, open SMS check-ins {len(convos)}",
              file=sys.stderr, flush=True)
        db.session.remove()
        db.engine.dispose()
    return convos, inbound


def drain(url: str) -> dict:
    """Read the whole queue as the process-inbound job does; time it."""
    from app import create_app
    from app.extensions import db
    from app.notifications.inbound import process_queued

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        started = time.perf_counter()
        stats = process_queued(batch_size=50, time_budget_s=0)
        stats["seconds"] = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    stats["rate"] = stats["processed"] / stats["seconds"] if stats["seconds"] else 0.0
    return stats


def read_outcome(url: str) -> tuple[int, int]:
    """Inbound messages not read (or read with an error), and replies queued in the outbox."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        unread = conn.execute(text(
            "SELECT count(*) FROM message WHERE direction = 'in' AND status <> 'received'")).scalar()
        replies = conn.execute(text("SELECT count(*) FROM outbox_entry WHERE purpose = 'sms_reply'")).scalar()
    engine.dispose()
    return unread, replies


def stored_inbound(url: str) -> tuple[int, int, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM message WHERE direction = 'in'")).scalar()
        sids = conn.execute(text("SELECT count(DISTINCT provider_sid) FROM message WHERE direction = 'in'")).scalar()
        answers = conn.execute(text("SELECT count(*) FROM checkin_answer")).scalar()
    engine.dispose()
    return total, sids, answers


class Server:
    def __init__(self, target: str, env: dict[str, str], threads: int) -> None:
        self.port = free_port()
        self.log = open(f"/tmp/bench_inbound_{self.port}.log", "w")
        workers = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else ["--worker-class", "sync"]
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-w", "2", *workers, "-b", f"127.0.0.1:{self.port}", target],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/__ready__")
                conn.getresponse().read()
                conn.close()
                time.sleep(1.0)  # both workers booted
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def drive(port: int, jobs: list[tuple[str, dict[str, str]]], concurrency: int, max_seconds: float) -> dict:
    """POST every job (headers signed by the caller) and time each one."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def one(job):
        if time.monotonic() > deadline:
            return
        body, headers = job
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", PATH, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            conn.close()
        except Exception as exc:  # noqa: BLE001 - counted, reported
            with lock:
                errors.append(type(exc).__name__)
            return
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "sent": len(latencies) + len(errors), "done": len(latencies), "errors": errors, "statuses": statuses,
        "wall": wall, "rps": len(latencies) / wall if wall else 0.0,
        "median": statistics.median(ordered) if ordered else 0.0,
        "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0,
        "max": ordered[-1] if ordered else 0.0,
    }


def build_jobs(convos: list[tuple[str, list[str]]], n: int, token: str) -> list[tuple[str, dict[str, str]]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    url = PUBLIC_BASE_URL + PATH
    jobs = []
    for i in range(n):
        round_, k = divmod(i, len(convos))
        phone, answers = convos[k]
        body = answers[round_] if round_ < len(answers) else "0"
        params = {"MessageSid": f"SMbench{i:026d}", "AccountSid": "ACbench", "From": phone, "To": TO_NUMBER,
                  "Body": body, "NumMedia": "0"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(url, params)}
        jobs.append((urllib.parse.urlencode(params), headers))
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_inbound", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="stop submitting after this")
    parser.add_argument("--pg-url", default=PG_SERVER_URL)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per gunicorn worker (gthread); 1 (default): sync workers, as `gunicorn -w 2`")
    args = parser.parse_args(argv)

    from bench.bench_pages import fresh_database
    token = secrets.token_hex(16)
    results = {}
    with fresh_database("postgres", args.pg_url, keep=False, name=PG_DB) as url:
        convos, before = setup(url, args.patients)
        rounds = math.ceil(args.requests / len(convos))
        jobs = build_jobs(convos, args.requests, token)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONCOLINK_")}
        env.update({
            "ONCOLINK_ENV": "production", "ONCOLINK_SECRET_KEY": secrets.token_urlsafe(48),
            "ONCOLINK_DATABASE_URL": url, "ONCOLINK_SMS_PROVIDER": "twilio",
            "ONCOLINK_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "ONCOLINK_TWILIO_AUTH_TOKEN": token,
            "ONCOLINK_TWILIO_FROM_NUMBER": TO_NUMBER, "ONCOLINK_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        })
        for name, target in (("oncolink", "wsgi:app"), ("bare", "bench.inbound_app:app")):
            server = Server(target, env, args.threads)
            try:
                load_before = os.getloadavg()[0]
                results[name] = drive(server.port, jobs, args.concurrency, args.max_seconds)
                results[name]["load"] = (load_before, os.getloadavg()[0])
            finally:
                server.stop()
            print(f"{name}: {results[name]['rps']:.0f} answers/s", file=sys.stderr, flush=True)
            if name == "oncolink":
                load_before = os.getloadavg()[0]
                processing = drain(url)
                processing["load"] = (load_before, os.getloadavg()[0])
                print(f"processing: {processing}", file=sys.stderr, flush=True)
        stored, distinct, answers = stored_inbound(url)
        unread, replies = read_outcome(url)
    on = results["oncolink"]
    new = stored - before
    lines = [
        "| server | requests | concurrency | HTTP 200 | other / errors | wall (s) | answers/s | median (ms) | p95 (ms) | max (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("oncolink", "Onco'Link `wsgi:app` (signed, PostgreSQL)"),
                        ("bare", "bare Flask `bench.inbound_app:app`")):
        r = results[name]
        other = sum(v for k, v in r["statuses"].items() if k != 200) + len(r["errors"])
        lines.append(f"| {label} | {r['sent']:,} | {args.concurrency} | {r['statuses'].get(200, 0):,} | {other} | "
                     f"{r['wall']:.1f} | {r['rps']:.0f} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} |")
    lines.append(f"| queue read by `process_queued` (in-process, after the load) | {processing['processed']:,} | 1 | "
                 f"| | {processing['seconds']:.1f} | {processing['rate']:.0f} | | | |")
    print("\n".join(lines))
    print(f"\nopen SMS check-ins {len(convos):,} (of {args.patients:,} patients), answer rounds {rounds}; "
          f"inbound messages stored {new:,} for {on['sent']:,} POSTs (distinct MessageSid {distinct:,}); "
          f"check-in answers stored {answers:,}; statuses {on['statuses']}, errors {len(on['errors'])}; "
          f"load average before/after: oncolink {on['load'][0]:.1f}/{on['load'][1]:.1f}, "
          f"bare {results['bare']['load'][0]:.1f}/{results['bare']['load'][1]:.1f}, "
          f"processing {processing['load'][0]:.1f}/{processing['load'][1]:.1f}; "
          f"read {processing['processed']:,} in {processing['batches']} batches, handler errors "
          f"{processing['handler_errors']}, not read or in error {unread}, replies queued {replies:,}")
    ok = (on["statuses"].get(200, 0) == on["sent"] and new == on["sent"] and distinct == stored
          and not on["errors"] and unread == 0 and answers == on["sent"])
    if on["sent"] < args.requests:
        print(f"stopped after --max-seconds: {on['sent']:,} of {args.requests:,} requests sent")
    print("OK" if ok else "FAILED (lost, duplicated, unread or non-200 answers: see above)")
    if on["rps"] < TARGET_RPS:
        print(f"webhook below the {TARGET_RPS:.0f} answers/s target")
    if processing["rate"] < TARGET_RPS:
        print(f"processing below {TARGET_RPS:.0f} answers/s: a burst at the webhook's rate builds a queue "
              f"that drains at {processing['rate']:.0f}/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
