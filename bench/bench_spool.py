"""Signed inbound texts through gunicorn with the database up, then cut (the spool path), beside the
bare endpoint, in one run.

    .venv/bin/python -m bench.bench_spool --requests 3000 --concurrency 16

Setup: PostgreSQL database ``oncolink_bench_spool`` (dropped and created here, schema from the
migrations, nothing seeded: the webhook only queues each text and reads no patient), a TCP proxy in
front of it (``tests/tcp_proxy.py``), a spool file in a temporary folder. Then, with the client of
``bench.bench_inbound`` (``--concurrency`` threads, one connection per POST, each POST a distinct
MessageSid from one of ``--phones`` phones, round-robin):

1. ``bare``: ``gunicorn -w 2 bench.inbound_app:app`` (constant TwiML, no signature, no database);
2. ``up, direct``: ``gunicorn -w 2 wsgi:app``, production settings, PostgreSQL reached directly
   (what ``bench.bench_inbound`` measures);
3. ``up, via the proxy``: the same app reaching PostgreSQL through the proxy;
4. ``cut``: the proxy cut (connections refused), the same app: every text goes to the spool;
5. ``drain``: the proxy restored, no more requests; the time until the spool is empty and every
   text is in the database (drained by the web workers' own drain threads).

Checks: every POST 200; after the drain, stored inbound texts = POSTs of phases 2 to 4, each
MessageSid once, the spool empty. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.bench_inbound import PATH, PG_SERVER_URL, PUBLIC_BASE_URL, TO_NUMBER, Server, drive

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "oncolink_bench_spool"


def build_jobs(first: int, n: int, phones: int, token: str) -> list[tuple[str, dict[str, str]]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    url = PUBLIC_BASE_URL + PATH
    jobs = []
    for i in range(first, first + n):
        params = {"MessageSid": f"SMspool{i:025d}", "AccountSid": "ACbench", "From": f"+3361{i % phones:08d}",
                  "To": TO_NUMBER, "Body": "0", "NumMedia": "0"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(url, params)}
        jobs.append((urllib.parse.urlencode(params), headers))
    return jobs


def migrate(url: str) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def stored(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM message WHERE direction = 'in'")).scalar()
        sids = conn.execute(text("SELECT count(DISTINCT provider_sid) FROM message WHERE direction = 'in'")).scalar()
    engine.dispose()
    return total, sids


def spooled(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as conn:
        return conn.execute("SELECT count(*) FROM spool_item").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_spool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="POSTs per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="stop submitting a phase after this")
    parser.add_argument("--pg-url", default=PG_SERVER_URL)
    args = parser.parse_args(argv)

    from bench.bench_pages import fresh_database
    from tests.tcp_proxy import TcpProxy

    token = secrets.token_hex(16)
    results: dict[str, dict] = {}
    folder = Path(tempfile.mkdtemp(prefix="oncolink-bench-spool-"))
    spool_path = folder / "webhook-spool.sqlite3"
    with fresh_database("postgres", args.pg_url, keep=False, name=PG_DB) as url:
        migrate(url)
        server_url = make_url(url)
        proxy = TcpProxy(server_url.host or "127.0.0.1", server_url.port or 5432).start()
        proxied = server_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("ONCOLINK_")}
        base_env.update({
            "ONCOLINK_ENV": "production", "ONCOLINK_SECRET_KEY": secrets.token_urlsafe(48),
            "ONCOLINK_SMS_PROVIDER": "twilio", "ONCOLINK_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "ONCOLINK_TWILIO_AUTH_TOKEN": token, "ONCOLINK_TWILIO_FROM_NUMBER": TO_NUMBER,
            "ONCOLINK_PUBLIC_BASE_URL": PUBLIC_BASE_URL, "ONCOLINK_SPOOL_PATH": str(spool_path),
        })
        n = args.requests

        def phase(name: str, server: Server, first: int) -> None:
            load_before = os.getloadavg()[0]
            results[name] = drive(server.port, build_jobs(first, n, args.phones, token), args.concurrency,
                                  args.max_seconds)
            results[name]["load"] = (load_before, os.getloadavg()[0])
            print(f"{name}: {results[name]['rps']:.0f} texts/s", file=sys.stderr, flush=True)

        try:
            server = Server("bench.inbound_app:app", base_env, 1)
            try:
                phase("bare", server, 0)
            finally:
                server.stop()
            server = Server("wsgi:app", {**base_env, "ONCOLINK_DATABASE_URL": url}, 1)
            try:
                phase("up, direct", server, 0)
            finally:
                server.stop()
            server = Server("wsgi:app", {**base_env, "ONCOLINK_DATABASE_URL": proxied}, 1)
            try:
                phase("up, via the proxy", server, n)
                proxy.cut()
                phase("cut (spool)", server, 2 * n)
                in_spool = spooled(spool_path)
                proxy.restore()
                restored = time.perf_counter()
                expected = sum(results[k]["done"] for k in ("up, direct", "up, via the proxy", "cut (spool)"))
                deadline = restored + 300
                while time.perf_counter() < deadline and (spooled(spool_path) or stored(url)[0] < expected):
                    time.sleep(0.05)
                drain_s = time.perf_counter() - restored
            finally:
                server.stop()
        finally:
            proxy.close()
        total, distinct = stored(url)
    left = spooled(spool_path)

    lines = [
        "| phase | requests | concurrency | HTTP 200 | other / errors | wall (s) | texts/s | median (ms) "
        "| p95 (ms) | max (ms) | load before/after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    labels = {"bare": "bare Flask `bench.inbound_app:app`",
              "up, direct": "`wsgi:app`, database up (direct)",
              "up, via the proxy": "`wsgi:app`, database up (through the proxy)",
              "cut (spool)": "`wsgi:app`, database cut: spool path"}
    for name, label in labels.items():
        r = results[name]
        other = sum(v for k, v in r["statuses"].items() if k != 200) + len(r["errors"])
        lines.append(f"| {label} | {r['sent']:,} | {args.concurrency} | {r['statuses'].get(200, 0):,} | {other} | "
                     f"{r['wall']:.1f} | {r['rps']:.0f} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
                     f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |")
    cut = results["cut (spool)"]
    lines.append(f"| drain after the return (web workers' threads, through the proxy) | {in_spool:,} | | | | "
                 f"{drain_s:.1f} | {in_spool / drain_s:.0f} | | | | |")
    print("\n".join(lines))
    all_200 = all(r["statuses"].get(200, 0) == r["sent"] and not r["errors"] for r in results.values())
    print(f"\nspooled during the cut {in_spool:,} of {cut['sent']:,}; after the drain: inbound stored {total:,} "
          f"(distinct MessageSid {distinct:,}) for {expected:,} POSTs to the app, spool items left {left}")
    ok = all_200 and in_spool == cut["done"] and total == distinct == expected and left == 0
    print("OK" if ok else "FAILED (non-200, lost, duplicated or left in the spool: see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
