"""The webhook spool: signed texts and status callbacks that the database cannot take are kept on
this host's disk, answered normally, and moved into the database in arrival order per phone, each
MessageSid once, as soon as it answers again. Runs on SQLite and PostgreSQL (the database is made
to refuse connections inside this process); ``test_spool_outage.py`` does it across real processes.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.core.db import sqlite_immediate_transactions
from app.core.time import set_clock, utcnow
from app.extensions import db as _db
from app.jobs.registry import JOBS
from app.jobs.runner import run_job
from app.notifications import spool, spool_drain
from app.notifications.dispatcher import STATUS_CALLBACK_PATH
from app.notifications.models import Message
from tests.conftest import DATABASE_URL
from tests.spool_helpers import database_refusing, spool_rows
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC,
    SENDER,
    SID,
    TOKEN,
    count,
    fake_fixture,
    signed_post,
    twilio_app_fixture,
    use_settings_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
SMS_PATH = "/webhooks/twilio/sms"
_sids = itertools.count(1)


def _sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


def _text(body: str, phone: str, sid: str | None = None) -> dict[str, str]:
    return {"From": phone, "To": SENDER, "Body": body, "MessageSid": sid or _sid(), "AccountSid": SID,
            "NumMedia": "0"}


def _status(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID, "To": "+33611223344",
            "From": SENDER, **extra}


def _twiml_messages(response) -> list[str]:
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


@pytest.fixture
def spool_file(app, twilio_app, use_settings, tmp_path):
    """A spool of its own for the test; any drain thread the test started has ended afterwards."""
    path = tmp_path / "spool" / "webhook-spool.sqlite3"
    use_settings(SPOOL_PATH=str(path), SPOOL_MAX_ATTEMPTS=3, SPOOL_RETRY_MAX_SECONDS=0.2)
    spool._note_database_back()  # no outage seen by this process yet
    yield path
    spool._note_database_back()
    thread = spool_drain._thread
    if thread is not None:
        thread.join(15)
        if thread.is_alive() and path.exists():  # the test left items on purpose: let the thread end
            import sqlite3

            with sqlite3.connect(path) as connection:
                connection.execute("DELETE FROM spool_item")
            thread.join(15)
        assert not thread.is_alive()


@pytest.fixture
def no_drain_thread(monkeypatch):
    """The webhooks ask for a drain thread; the test drains by hand instead (and sees the asks)."""
    asked: list[object] = []
    monkeypatch.setattr(spool_drain, "drain_in_background", lambda app: asked.append(app) or False)
    return asked


def drain_now(app, **kwargs) -> dict[str, int]:
    """``spool_drain.drain`` in its own app context and session, as a drain thread or a job runs it."""
    with sqlite_immediate_transactions(), app.app_context():
        try:
            return spool_drain.drain(**kwargs)
        finally:
            _db.session.remove()


def _inbound(db) -> list[Message]:
    db.session.rollback()
    return list(db.session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def _by_phone(messages: list[Message]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for message in messages:
        out.setdefault(message.from_number, []).append(message.body)
    return out


def _status_of(db, sid: str) -> str | None:
    db.session.rollback()
    return db.session.scalar(select(Message.status).where(Message.provider_sid == sid))


# ---------------------------------------------------------------- outage, answers, drain

def test_database_down_texts_and_callbacks_are_answered_spooled_then_stored_in_order(
        app, db, client, fake, spool_file, no_drain_thread):
    known = _sid()
    signed_post(client, fake, STATUS_CALLBACK_PATH, _status(known, "sent"))  # stored before the outage
    phones = ["+33611000001", "+33611000002", "+33611000003"]
    sent: dict[str, list[str]] = {p: [] for p in phones}
    callbacks = [(known, "delivered"), (_sid(), "sent"), (_sid(), "failed")]
    arrived = utcnow()
    with database_refusing(db):
        for n in range(4):
            for phone in phones:
                body = f"réponse {n} de {phone[-1]}"
                response = signed_post(client, fake, SMS_PATH, _text(body, phone))
                assert response.status_code == 200 and _twiml_messages(response) == []
                sent[phone].append(body)
        for sid, status in callbacks:
            assert signed_post(client, fake, STATUS_CALLBACK_PATH, _status(sid, status)).status_code == 204
        assert client.get("/healthz").get_json()["checks"]["database"] is False
    assert spool.status()[0] == 15 and no_drain_thread  # each spooling asked for a drain
    assert _inbound(db) == [] and _status_of(db, known) == "sent"  # nothing reached the database

    stats = drain_now(app)
    assert (stats["sms"], stats["statuses"], stats["left"], stats["database_down"]) == (12, 3, 0, 0)
    stored = _inbound(db)
    assert _by_phone(stored) == sent
    assert all(m.status == "queued" for m in stored)
    assert all(arrived <= m.created_at <= utcnow() for m in stored)  # when the webhook received it
    assert [_status_of(db, sid) for sid, _ in callbacks] == ["delivered", "sent", "failed"]
    assert spool.status() == (0, None) and spool_rows(spool_file) == []
    assert drain_now(app)["sms"] == 0  # nothing twice


def test_a_drain_while_the_database_is_still_down_keeps_everything(app, db, client, fake, spool_file,
                                                                   no_drain_thread):
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("1", "+33611000001"))
        stats = drain_now(app)
    assert (stats["database_down"], stats["left"], stats["sms"]) == (1, 1, 0)
    assert spool_rows(spool_file)[0][4:] == ("pending", 0)  # an outage is not an attempt
    assert drain_now(app)["sms"] == 1 and len(_inbound(db)) == 1


def test_until_a_drain_sees_the_database_back_everything_goes_to_the_spool(app, db, client, fake, spool_file,
                                                                          no_drain_thread):
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("first", "+33611000001"))
    # The database is back, but no drain of this process has seen it yet: no request waits on a
    # database that may hang (a lost host costs one connection timeout per process).
    signed_post(client, fake, SMS_PATH, _text("other phone", "+33611000002"))
    signed_post(client, fake, STATUS_CALLBACK_PATH, _status(_sid(), "sent"))
    assert [row[1] for row in spool_rows(spool_file)] == ["sms", "sms", "status"] and _inbound(db) == []
    drain_now(app)
    assert [m.body for m in _inbound(db)] == ["first", "other phone"]
    signed_post(client, fake, SMS_PATH, _text("after", "+33611000002"))  # straight in again
    assert spool_rows(spool_file) == [] and len(_inbound(db)) == 3


def test_a_newer_text_waits_behind_the_spooled_one_of_its_phone(app, db, client, fake, spool_file,
                                                                no_drain_thread, monkeypatch):
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("first", "+33611000001"))
    # The database is back and a drain saw it (say another process's drain is working through a
    # backlog), but this phone's spooled text is not in yet.
    monkeypatch.setattr(spool, "_outage_seen", None)
    signed_post(client, fake, SMS_PATH, _text("second", "+33611000001"))
    signed_post(client, fake, SMS_PATH, _text("other phone", "+33611000002"))
    assert [m.body for m in _inbound(db)] == ["other phone"]  # its phone had nothing waiting
    assert [row[2] for row in spool_rows(spool_file)] == ["+33611000001", "+33611000001"]

    drain_now(app)
    assert [m.body for m in _inbound(db)] == ["other phone", "first", "second"]
    signed_post(client, fake, SMS_PATH, _text("third", "+33611000001"))  # spool empty: straight in
    assert [m.body for m in _inbound(db)][-1] == "third" and spool_rows(spool_file) == []


def test_each_message_sid_once_even_when_spooled_twice_or_known_already(app, db, client, fake, spool_file,
                                                                         no_drain_thread):
    before = _sid()
    assert signed_post(client, fake, SMS_PATH, _text("stored before", "+33611000001", before)).status_code == 200
    twice = _sid()
    with database_refusing(db):
        for params in (_text("retry of a stored one", "+33611000001", before),
                       _text("posted twice", "+33611000002", twice), _text("posted twice", "+33611000002", twice)):
            assert signed_post(client, fake, SMS_PATH, params).status_code == 200
    stats = drain_now(app)
    assert (stats["sms"], stats["duplicates"]) == (1, 2)
    assert [(m.provider_sid, m.body) for m in _inbound(db)] == [(before, "stored before"), (twice, "posted twice")]


def test_a_drain_killed_between_the_database_and_the_spool_stores_nothing_twice(app, db, client, fake,
                                                                               spool_file, no_drain_thread,
                                                                               monkeypatch):
    with database_refusing(db):
        for n in range(5):
            signed_post(client, fake, SMS_PATH, _text(f"t{n}", "+33611000001"))
        signed_post(client, fake, STATUS_CALLBACK_PATH, _status(_sid(), "sent"))
    real_delete = spool._delete

    def dies(connection, ids):
        if ids:
            raise KeyboardInterrupt  # as a kill would: delivered, not yet deleted from the spool
        return real_delete(connection, ids)

    monkeypatch.setattr(spool, "_delete", dies)
    with pytest.raises(KeyboardInterrupt):
        drain_now(app)
    assert len(_inbound(db)) == 5 and len(spool_rows(spool_file)) == 6
    monkeypatch.setattr(spool, "_delete", real_delete)
    stats = drain_now(app)
    assert (stats["sms"], stats["duplicates"], stats["statuses"], stats["left"]) == (0, 5, 1, 0)
    assert [m.body for m in _inbound(db)] == [f"t{n}" for n in range(5)]


def test_the_webhook_reply_is_answered_and_kept_with_the_spooled_text(app, db, client, fake, spool_file,
                                                                    no_drain_thread, monkeypatch):
    from app.notifications import webhooks

    monkeypatch.setattr(webhooks, "_twiml_reply", lambda form: "Appelez le 15." if "sang" in form["Body"] else None)
    with database_refusing(db):
        red = signed_post(client, fake, SMS_PATH, _text("du sang", "+33611000001"))
        calm = signed_post(client, fake, SMS_PATH, _text("ça va", "+33611000002"))
    assert _twiml_messages(red) == ["Appelez le 15."] and _twiml_messages(calm) == []
    with spool._connection(spool_file, create=False) as connection:
        payloads = [json.loads(p) for (p,) in connection.execute("SELECT payload FROM spool_item ORDER BY id")]
    assert [p["webhook_reply"] for p in payloads] == ["Appelez le 15.", None]


# ---------------------------------------------------------------- the file itself

def test_every_spool_write_is_synced_to_disk_and_the_new_file_is_private(app, db, spool_file, monkeypatch):
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    spool.write(spool.SMS, {"provider_sid": "SMx"}, phone="+33611000001", sid="SMx")
    assert synced == [True]  # the folder, once the file exists (SQLite syncs the file itself)
    connection = spool._connection(spool_file, create=False)
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync at each commit
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert stat.S_IMODE(spool_file.stat().st_mode) == 0o600


def test_an_item_written_is_there_after_the_writer_is_killed(app, db, spool_file):
    """The webhook answers once ``write`` returns: a kill -9 right after loses nothing."""
    script = (
        "import os, signal, sys\n"
        "from app import create_app\n"
        "from app.notifications import spool\n"
        "app = create_app('testing', {'SPOOL_PATH': sys.argv[1]})\n"
        "with app.app_context():\n"
        "    n = spool.write(spool.SMS, {'body': 'killed right after'}, phone='+33611000009', sid='SMkill')\n"
        "    print(n, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "TEST_DATABASE_URL": DATABASE_URL}
    proc = subprocess.run([sys.executable, "-c", script, str(spool_file)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [row[3] for row in spool_rows(spool_file)] == ["SMkill"]
    assert spool.status()[0] == 1


def test_spool_not_writable_is_503_with_a_truthful_body(app, db, client, fake, spool_file, use_settings,
                                                       tmp_path, no_drain_thread):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    use_settings(SPOOL_PATH=str(blocker / "webhook-spool.sqlite3"))
    params = _text("39,5", "+33611000001")
    with database_refusing(db):
        sms = signed_post(client, fake, SMS_PATH, params)
        callback = signed_post(client, fake, STATUS_CALLBACK_PATH, _status(_sid(), "failed"))
    for response in (sms, callback):
        assert response.status_code == 503
        message = response.get_json()["error"]["message"]
        assert "spool" in message and "pas pu" in message  # French by default: "n'a pas pu"
        for untrue in ("prévenu", "told", "notified", "reçu"):
            assert untrue not in message
    assert _inbound(db) == []
    signed_post(client, fake, SMS_PATH, params)  # Twilio's Fallback URL on a host that works
    assert len(_inbound(db)) == 1


def test_a_full_spool_answers_503_and_keeps_what_it_took(app, db, client, fake, spool_file, use_settings,
                                                        no_drain_thread):
    use_settings(SPOOL_MAX_MB=0.1)  # what a full disk does to SQLite: "database or disk is full"
    codes = []
    with database_refusing(db):
        for n in range(200):
            response = signed_post(client, fake, SMS_PATH, _text(f"{n:03d} " + "x" * 1500, "+33611000001"))
            codes.append(response.status_code)
            if response.status_code != 200:
                break
    kept = codes.index(503)
    assert kept > 5 and set(codes[:kept]) == {200}
    assert len(spool_rows(spool_file)) == kept
    drain_now(app)
    assert [m.body[:3] for m in _inbound(db)] == [f"{n:03d}" for n in range(kept)]


def test_any_other_webhook_error_says_nothing_untrue(app, db, client, fake, spool_file, use_settings,
                                                   monkeypatch):
    from app.notifications import webhooks

    def broken(form):
        raise RuntimeError("bug")

    monkeypatch.setattr(webhooks, "_twiml_reply", broken)
    use_settings(PROPAGATE_UNEXPECTED=False)
    response = signed_post(client, fake, SMS_PATH, _text("1", "+33611000001"))
    assert response.status_code == 500
    message = response.get_json()["error"]["message"]
    assert "prévenue" not in message and "pas été enregistrée" in message


def test_two_processes_draining_at_once_store_each_item_once_in_order(app, db, client, fake, spool_file,
                                                                     no_drain_thread):
    phones = [f"+336110000{n:02d}" for n in range(10)]
    for n in range(12):
        for phone in phones:
            spool.write(spool.SMS, {"from_number": phone, "to_number": SENDER, "body": f"{n:02d}",
                                    "provider_sid": _sid(), "webhook_reply": None}, phone=phone)
    for _ in range(10):
        sid = _sid()
        spool.write(spool.STATUS, {"sid": sid, "status": "delivered", "channel": "sms"}, sid=sid)
    env = {**os.environ, "ONCOLINK_ENV": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "ONCOLINK_SPOOL_PATH": str(spool_file)}
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "spool", "drain", "--wait", "60"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    stats = [dict(pair.split("=") for pair in out.strip().splitlines()[-1].split()) for out in outputs]
    assert sum(int(s["sms"]) for s in stats) == 120 and sum(int(s["duplicates"]) for s in stats) == 0
    assert sum(int(s["statuses"]) for s in stats) == 10
    stored = _inbound(db)
    assert len(stored) == len({m.provider_sid for m in stored}) == 120
    assert _by_phone(stored) == {phone: [f"{n:02d}" for n in range(12)] for phone in phones}
    assert count(db, Message, Message.direction == "out", Message.status == "delivered") == 10
    assert spool_rows(spool_file) == []


def test_two_drains_in_one_process_take_turns(app, db, spool_file):
    spool.write(spool.SMS, {"from_number": "+33611000001", "to_number": SENDER, "body": "x",
                            "provider_sid": _sid(), "webhook_reply": None}, phone="+33611000001")
    with spool_drain._drain_lock(spool_file, 0) as held:
        assert held
        stats = drain_now(app)  # another drainer holds the lock
        assert (stats["busy"], stats["sms"], stats["left"]) == (1, 0, 1)
    assert drain_now(app)["sms"] == 1


# ---------------------------------------------------------------- refused items, visibility

def test_an_item_the_database_refuses_is_set_aside_and_its_phone_goes_on(app, db, client, fake, spool_file,
                                                                        no_drain_thread, monkeypatch, circuit,
                                                                        login):
    with database_refusing(db):
        for body in ("poison", "after poison", "other"):
            phone = "+33611000002" if body == "other" else "+33611000001"
            signed_post(client, fake, SMS_PATH, _text(body, phone))
    real_store = spool._store_sms

    def refuses_poison(payload, received_at):
        if payload["body"] == "poison":
            raise ValueError("refused")  # not an outage: the database answers
        return real_store(payload, received_at)

    monkeypatch.setattr(spool, "_store_sms", refuses_poison)
    first = drain_now(app)
    assert (first["sms"], first["retried"], first["left"]) == (1, 1, 2)  # "after poison" waits its turn
    assert [m.body for m in _inbound(db)] == ["other"]
    drain_now(app)
    last = drain_now(app)  # third refusal of SPOOL_MAX_ATTEMPTS=3: set aside, the phone goes on
    assert (last["set_aside"], last["sms"], last["left"]) == (1, 1, 0)
    assert [m.body for m in _inbound(db)] == ["other", "after poison"]
    assert [(r[4], r[5]) for r in spool_rows(spool_file)] == [("failed", 3)]
    assert spool.status()[0] == 1 and spool.details().failed == 1

    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["checks"]["spool"] is False
    page = login(circuit.admin).get("/admin/jobs/").get_data(as_text=True)
    assert 'data-spool="1"' in page and "poison" not in page

    monkeypatch.setattr(spool, "_store_sms", real_store)
    result = app.test_cli_runner().invoke(args=["spool", "drain", "--retry-set-aside"])
    assert result.exit_code == 0, result.output
    assert "put back in line: 1" in result.output
    assert [m.body for m in _inbound(db)] == ["other", "after poison", "poison"]


def test_healthz_fails_when_the_spool_waits_too_long_and_names_no_patient(app, db, client, fake, spool_file,
                                                                          no_drain_thread, use_settings):
    use_settings(HEALTH_SPOOL_STALE_SECONDS=60.0)
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("39,5 je saigne", "+33611000001"))
        down = client.get("/healthz")
        assert down.status_code == 503
        assert down.get_json()["checks"] == {"database": False, "spool": True}  # just spooled
        set_clock(utcnow() + timedelta(seconds=61))
        try:
            late = client.get("/healthz")
        finally:
            set_clock(None)
    body = late.get_json()
    assert late.status_code == 503 and body["checks"] == {"database": False, "spool": False}
    assert body["oldest_spooled_age_s"] >= 61
    for secret in ("+33611000001", "39,5", "saigne"):
        assert secret not in late.get_data(as_text=True)
    drain_now(app)
    assert client.get("/healthz").get_json()["checks"]["spool"] is True


def test_admins_see_the_spool_on_the_jobs_page(app, db, client, fake, spool_file, no_drain_thread, circuit, login):
    admin = login(circuit.admin)
    assert 'data-spool="0"' in admin.get("/admin/jobs/").get_data(as_text=True)
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("secret words", "+33611000001"))
        signed_post(client, fake, STATUS_CALLBACK_PATH, _status(_sid(), "sent"))
    html = admin.get("/admin/jobs/").get_data(as_text=True)
    assert 'data-spool="2"' in html and 'role="alert"' in html
    assert "secret words" not in html and "+33611000001" not in html
    assert 'data-job="drain-spool"' in html


def test_cli_status_and_the_scheduler_job_drain_the_spool(app, db, client, fake, spool_file, no_drain_thread):
    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("1", "+33611000001"))
    runner = app.test_cli_runner()
    out = runner.invoke(args=["spool", "status"]).output
    assert "waiting   1" in out and "set aside 0" in out and str(spool_file) in out
    assert JOBS["drain-spool"].target == "app.notifications.spool_drain:drain_job"
    with sqlite_immediate_transactions():
        run = run_job("drain-spool")
    assert run.outcome == "ok" and run.summary["sms"] == 1 and run.summary["left"] == 0
    assert len(_inbound(db)) == 1
    assert "waiting   0" in runner.invoke(args=["spool", "status"]).output


# ---------------------------------------------------------------- the drain thread

def _drain_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == spool_drain.THREAD_NAME]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_the_worker_that_spooled_drains_by_itself_once_the_database_answers(app, db, client, fake, spool_file):
    assert signed_post(client, fake, SMS_PATH, _text("normal day", "+33611000001")).status_code == 200
    assert _drain_threads() == [] and not spool_file.exists()  # nothing spooled: no thread, no file
    with database_refusing(db):
        for n in range(3):
            signed_post(client, fake, SMS_PATH, _text(f"cut {n}", "+33611000001"))
        assert len(_drain_threads()) == 1  # started by the request that spooled; one per process
        time.sleep(0.5)
        assert spool.status()[0] == 3  # it waits while the database is down
    _wait_for(lambda: spool.status()[0] == 0 and not _drain_threads(), 15, "the thread to drain and end")
    assert [m.body for m in _inbound(db)] == ["normal day", "cut 0", "cut 1", "cut 2"]


def test_a_worker_starting_with_a_non_empty_spool_drains_it(app, db, client, fake, spool_file, no_drain_thread,
                                                            monkeypatch):
    from flask import Flask

    with database_refusing(db):
        signed_post(client, fake, SMS_PATH, _text("left by a dead worker", "+33611000001"))
    monkeypatch.undo()  # the real drain_in_background again
    assert spool_drain.drain_if_pending(Flask("bare")) is False  # another WSGI app: nothing to do
    assert spool_drain.drain_if_pending(app) is True
    _wait_for(lambda: spool.status()[0] == 0 and not _drain_threads(), 15, "the boot-time drain")
    assert [m.body for m in _inbound(db)] == ["left by a dead worker"]
    assert spool_drain.drain_if_pending(app) is False  # empty now: no thread
