"""Rota gaps told ahead: a gap of the next 72 hours is texted to the site's admins and coordinating
nurses once a day until it is filled, by a job that is idempotent and runnable from the CLI."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.core.time import set_clock
from app.notifications.models import OutboxEntry
from app.notifications.segments import count_segments, fits
from app.triage import oncall

PARIS = ZoneInfo("Europe/Paris")
MONDAY_10H = datetime(2025, 3, 10, 10, 0, tzinfo=PARIS)
ADMIN_MOBILE = "+33611223344"


@pytest.fixture()
def world(circuit, db):
    circuit.admin.phone = ADMIN_MOBILE
    circuit.other_oncologist.phone = "+33612000077"
    db.session.commit()
    yield circuit
    set_clock(None)


def _at(when: datetime) -> None:
    set_clock(when.astimezone(timezone.utc))


def _run(app) -> str:
    """``flask jobs run notify-rota-gaps``, as an operator would (with BEGIN IMMEDIATE, as the
    scheduler's runs; the test's session holds no transaction meanwhile)."""
    from app.core.db import sqlite_immediate_transactions
    from app.extensions import db

    db.session.rollback()
    with sqlite_immediate_transactions():
        result = app.test_cli_runner().invoke(args=["jobs", "run", "notify-rota-gaps"])
    assert result.exit_code == 0, result.output
    return result.output


def _notices(db):
    db.session.rollback()
    return list(db.session.scalars(select(OutboxEntry).where(OutboxEntry.purpose == "rota_gap")
                                   .order_by(OutboxEntry.id)))


def _cover(site, prof, start: datetime, days: int) -> None:
    for n in range(days):
        oncall.add_shift(site, professional_id=prof.id, starts_at=start + timedelta(days=n),
                         ends_at=start + timedelta(days=n + 1))


def test_a_gap_is_texted_once_a_day_until_it_is_filled(app, world, db):
    _at(MONDAY_10H)
    # The other site is covered for a week; Lyon for the next 24 hours only.
    _cover(world.other_site, world.other_oncologist, MONDAY_10H - timedelta(hours=1), 7)
    _cover(world.site, world.oncologist, MONDAY_10H - timedelta(hours=1), 1)
    db.session.commit()

    assert '"queued": 2' in _run(app)
    notices = _notices(db)
    assert sorted(n.to_number for n in notices) == sorted([world.nurse.phone, ADMIN_MOBILE])
    for notice in notices:
        assert "LYN" in notice.body and fits(notice.body, 2) and notice.ref.startswith(f"rota-gap:{world.site.id}:")
        assert "lun. 10/03 09:00" not in notice.body  # the gap starts when the shift ends
        assert "mar. 11/03 09:00" in notice.body and count_segments(notice.body)[0] == "GSM-7"
        assert world.patient.last_name not in notice.body

    _at(MONDAY_10H + timedelta(hours=1))
    _run(app)  # the same day: nobody is texted twice
    _at(MONDAY_10H + timedelta(hours=11, minutes=30))  # 21:30: not at night
    _run(app)
    assert len(_notices(db)) == 2

    _at(MONDAY_10H + timedelta(days=1))  # the next day, still a gap: told again
    _run(app)
    assert len(_notices(db)) == 4

    _cover(world.site, world.oncologist, MONDAY_10H + timedelta(days=1) - timedelta(hours=1), 5)
    db.session.commit()
    _at(MONDAY_10H + timedelta(days=2))  # filled: nothing more
    _run(app)
    assert len(_notices(db)) == 4


def test_the_gap_is_shown_on_the_triage_page_too(app, world, db, login):
    _at(MONDAY_10H)
    html = login(world.nurse).get("/triage").get_data(as_text=True)
    assert 'id="rota-gaps"' in html


def test_the_job_is_registered():
    from app.jobs.registry import JOBS
    from app.triage.tasks import notify_rota_gaps

    assert JOBS["notify-rota-gaps"].resolve() is notify_rota_gaps
