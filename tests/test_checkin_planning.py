"""Planning: one check-in per patient and period, at the patient's local time, never twice."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select

from app.care.models import PatientStatus
from app.core.time import utcnow
from app.extensions import db as _db
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.checkins.planning import local_to_utc, plan_checkins
from app.pathways.models import Enrolment
from tests import factories as f
from tests.test_checkin_support import MONDAY, checkins_of, clock, world  # noqa: F401

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def _count() -> int:
    return _db.session.scalar(select(func.count()).select_from(CheckIn))


def test_each_eligible_patient_gets_one_checkin_for_the_current_week(world):
    summary = plan_checkins()
    assert summary["planned"] == 3 and summary["patients"] == 3
    (checkin,) = checkins_of(world.patient)
    assert checkin.period_key == "2027-W09"
    assert checkin.status == CheckInStatus.SCHEDULED and checkin.channel == "sms" and checkin.sequence == "S2"
    # Monday 10:00 in Paris, winter time.
    assert checkin.scheduled_at == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert checkin.closes_at == datetime(2027, 3, 8, 9, 0, tzinfo=UTC)


def test_rerun_is_idempotent(world, clock):
    plan_checkins()
    assert plan_checkins()["planned"] == 0
    clock.advance(hours=5)
    assert plan_checkins()["planned"] == 0
    assert _count() == 3


def test_next_period_is_planned_once_within_the_horizon(world, clock):
    clock.set(datetime(2027, 3, 6, 12, 0, tzinfo=UTC))  # Saturday: next Monday is 45 h away
    plan_checkins()
    assert [c.period_key for c in checkins_of(world.patient)] == ["2027-W09", "2027-W10"]
    clock.set(datetime(2027, 3, 8, 12, 0, tzinfo=UTC))
    plan_checkins()
    assert [c.period_key for c in checkins_of(world.patient)] == ["2027-W09", "2027-W10"]


def test_weekly_over_a_month_gives_one_checkin_per_week(world, clock):
    for day in range(28):
        for hour in (0, 9, 18):
            clock.set(MONDAY.replace(hour=hour) + timedelta(days=day))
            plan_checkins()
    keys = [c.period_key for c in checkins_of(world.patient)]
    assert keys == ["2027-W09", "2027-W10", "2027-W11", "2027-W12", "2027-W13"]  # the last within the horizon
    slots = [c.scheduled_at.astimezone(PARIS) for c in checkins_of(world.patient)]
    assert all(s.weekday() == 0 and s.hour == 10 for s in slots)


@pytest.mark.parametrize("change", [
    dict(status=PatientStatus.PAUSED), dict(status=PatientStatus.HOSPITALISED), dict(status=PatientStatus.ENDED),
    dict(consent_given=False), dict(opted_out_at=MONDAY - timedelta(days=1)),
])
def test_patients_not_to_be_asked_are_not_planned(world, change):
    for key, value in change.items():
        setattr(world.patient, key, value)
    _db.session.commit()
    plan_checkins()
    assert checkins_of(world.patient) == []
    assert checkins_of(world.patient_no_team) != []


def test_ended_enrolment_is_not_planned(world):
    enrolment = _db.session.scalar(select(Enrolment).where(Enrolment.patient_id == world.patient.id))
    enrolment.status, enrolment.active_patient_id, enrolment.ended_on = "ended", None, MONDAY.date()
    _db.session.commit()
    plan_checkins()
    assert checkins_of(world.patient) == []


def test_no_checkin_before_the_patient_was_enrolled(world, clock):
    late = f.create_patient(world.site, start=date(2027, 3, 3), checkin_weekday=0)  # enrolled on Wednesday
    _db.session.commit()
    clock.set(datetime(2027, 3, 3, 12, 0, tzinfo=UTC))
    plan_checkins()
    assert checkins_of(late) == []  # Monday's slot was before the enrolment
    clock.set(datetime(2027, 3, 7, 12, 0, tzinfo=UTC))
    plan_checkins()
    assert [c.period_key for c in checkins_of(late)] == ["2027-W10"]


@pytest.mark.parametrize("weeks", [2, 4])
def test_s3_is_asked_every_two_or_four_weeks(db, clock, weeks):
    site = f.create_site(s3_followup_weeks=weeks)
    patient = f.create_patient(site, sequence="S3", start=date(2027, 2, 15), checkin_weekday=2, checkin_hour=9)
    db.session.commit()
    for day in range(8 * 7):
        clock.set(datetime(2027, 2, 15, 12, 0, tzinfo=UTC) + timedelta(days=day))
        plan_checkins()
    rows = [c for c in checkins_of(patient) if c.scheduled_at < datetime(2027, 4, 12, tzinfo=UTC)]
    assert len(rows) == 8 // weeks
    local = [c.scheduled_at.astimezone(PARIS) for c in rows]  # (summer time starts on 28 March)
    assert {(b.date() - a.date()) for a, b in zip(local, local[1:])} == {timedelta(weeks=weeks)}
    assert all(s.weekday() == 2 and s.hour == 9 for s in local)
    assert rows[0].period_key == "2027-W07" and rows[0].sequence == "S3"
    assert all(c.closes_at.astimezone(PARIS).date() - c.scheduled_at.astimezone(PARIS).date()
               == timedelta(weeks=weeks) for c in rows)


def test_period_key_is_the_local_iso_week(db, clock):
    site = f.create_site()
    patient = f.create_patient(site, timezone="Pacific/Auckland", checkin_weekday=0, checkin_hour=8)
    db.session.commit()
    clock.set(datetime(2027, 2, 28, 12, 0, tzinfo=UTC))  # already Monday 1 March in Auckland
    plan_checkins()
    (checkin,) = checkins_of(patient)
    assert checkin.period_key == "2027-W09"
    assert checkin.scheduled_at == datetime(2027, 2, 28, 19, 0, tzinfo=UTC)  # Monday 08:00 NZDT (UTC+13)


def test_wall_clock_times_on_dst_days():
    sunday_spring, sunday_autumn = date(2027, 3, 28), date(2027, 10, 31)
    # 02:30 does not exist on 28 March: the same instant as 03:30 summer time.
    assert local_to_utc(sunday_spring, 2, 30, PARIS) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert local_to_utc(sunday_spring, 2, 30, PARIS).astimezone(PARIS).strftime("%H:%M") == "03:30"
    # 02:30 happens twice on 31 October: the first one (summer time, UTC+2).
    assert local_to_utc(sunday_autumn, 2, 30, PARIS) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("sunday, expected", [
    (date(2027, 3, 28), datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),  # 02:00 skipped: 03:00 summer time
    (date(2027, 10, 31), datetime(2027, 10, 31, 0, 0, tzinfo=UTC)),  # 02:00 twice: the first
])
def test_exactly_one_checkin_on_dst_sundays(db, clock, sunday, expected):
    site = f.create_site()
    patient = f.create_patient(site, start=sunday - timedelta(days=60), checkin_weekday=6, checkin_hour=2)
    db.session.commit()
    start = datetime.combine(sunday - timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    for half_hour in range(6 * 24 * 2):  # every 30 minutes around the change
        clock.set(start + timedelta(minutes=30 * half_hour))
        plan_checkins()
    on_that_day = [c for c in checkins_of(patient) if c.scheduled_at.astimezone(PARIS).date() == sunday]
    assert len(on_that_day) == 1
    assert on_that_day[0].scheduled_at == expected
    year, week, _ = sunday.isocalendar()
    assert on_that_day[0].period_key == f"{year}-W{week:02d}"
    keys = [c.period_key for c in checkins_of(patient)]
    assert len(keys) == len(set(keys))


def _planner(app, barrier, errors, results):
    try:
        with app.app_context():
            barrier.wait(timeout=30)
            results.append(plan_checkins()["planned"])
            _db.session.remove()
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_two_planners_at_once_never_duplicate(app, db, clock, monkeypatch):
    site = f.create_site()
    patients = [f.create_patient(site, checkin_weekday=n % 7) for n in range(40)]
    db.session.commit()
    monkeypatch.setitem(app.config, "CHECKIN_BATCH_SIZE", 7)  # many small transactions interleave
    barrier, errors, results = threading.Barrier(3), [], []
    threads = [threading.Thread(target=_planner, args=(app, barrier, errors, results)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    db.session.rollback()
    per_patient = db.session.execute(
        select(CheckIn.patient_id, CheckIn.period_key, func.count()).group_by(CheckIn.patient_id, CheckIn.period_key)
    ).all()
    assert all(n == 1 for _p, _k, n in per_patient)
    planned = {p.id for p in patients}
    assert planned <= {row[0] for row in per_patient}
    assert sum(results) == _count()  # every row was created by exactly one planner
    assert utcnow() == MONDAY


def test_rerun_sends_no_insert_and_still_plans_a_newly_enrolled_patient(app, world, clock):
    first = plan_checkins()
    assert first["planned"] == 3 and first["already_planned"] == 0
    newcomer = f.create_patient(world.site, start=date(2027, 2, 1), checkin_weekday=3, checkin_hour=11)
    _db.session.commit()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(_db.engine, "before_cursor_execute", record)
    try:
        second = plan_checkins()
    finally:
        event.remove(_db.engine, "before_cursor_execute", record)
    assert second["planned"] == 1 and second["already_planned"] == 3
    assert statements.count("INSERT") == 1  # the newcomer's row only
    assert [c.period_key for c in checkins_of(newcomer)] == ["2027-W09"]
    statements.clear()
    event.listen(_db.engine, "before_cursor_execute", record)
    try:
        third = plan_checkins()
    finally:
        event.remove(_db.engine, "before_cursor_execute", record)
    assert third["planned"] == 0 and third["already_planned"] == 4
    assert "INSERT" not in statements
    assert _count() == 4


def test_patients_sharing_a_slot_pattern_keep_their_own_s3_periods(db, clock):
    """Slots are computed once per pattern; the S3 anchor (week the sequence started) is part of it."""
    site = f.create_site(s3_followup_weeks=2)
    from_w07 = f.create_patient(site, sequence="S3", start=date(2027, 2, 15), checkin_weekday=2, checkin_hour=9)
    from_w08 = f.create_patient(site, sequence="S3", start=date(2027, 2, 22), checkin_weekday=2, checkin_hour=9)
    weekly = f.create_patient(site, sequence="S2", start=date(2027, 2, 22), checkin_weekday=2, checkin_hour=9)
    late = f.create_patient(site, sequence="S2", start=date(2027, 3, 4), checkin_weekday=2, checkin_hour=9)
    db.session.commit()
    plan_checkins()
    assert [c.period_key for c in checkins_of(from_w07)] == ["2027-W09"]  # periods W07-08, W09-10
    assert [c.period_key for c in checkins_of(from_w08)] == ["2027-W08"]  # periods W08-09: still open
    assert [c.period_key for c in checkins_of(weekly)] == ["2027-W09"]
    assert checkins_of(late) == []  # same pattern, but this week's slot is before the start
    (w08,) = checkins_of(from_w08)
    assert w08.scheduled_at == datetime(2027, 2, 24, 8, 0, tzinfo=UTC)
    assert w08.closes_at == datetime(2027, 3, 10, 8, 0, tzinfo=UTC)
