"""Chasing non-responders on a fixed clock: reminder, call task, closing, alert after two misses."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.care.models import PatientStatus
from app.extensions import db as _db
from app.notifications.models import OutboxEntry
from app.pathways.checkins import templates as t
from app.pathways.checkins.chase import chase_non_responders
from app.pathways.checkins.models import CheckInStatus
from app.pathways.checkins.planning import plan_checkins
from app.pathways.checkins.queries import checkin_history, non_responders
from app.pathways.checkins.start import start_due_checkins
from app.triage.models import Alert, NurseTask
from tests.test_checkin_support import (  # noqa: F401
    MONDAY,
    checkins_of,
    clock,
    outbox_for,
    sms,
    start_one,
    world,
)


def _tasks(patient):
    return list(_db.session.scalars(select(NurseTask).where(NurseTask.patient_id == patient.id)))


def _alerts(patient, source):
    return list(_db.session.scalars(select(Alert).where(Alert.patient_id == patient.id, Alert.source == source)))


def test_reminder_after_a_day_then_a_call_task_after_three(world, clock):
    patient = world.patient
    checkin = start_one(patient)  # started MONDAY 09:30 UTC
    clock.advance(hours=23, minutes=59)
    assert chase_non_responders()["reminders"] == 0
    clock.advance(minutes=1)
    assert chase_non_responders()["reminders"] == 3  # the three patients of the circuit
    reminder = outbox_for(checkin)[-1]
    assert reminder.idempotency_key == f"checkin:{checkin.id}:reminder"
    assert reminder.body.startswith("Rappel") and "combien de prises" in reminder.body
    clock.advance(hours=6)
    assert chase_non_responders() == {"closed": 0, "no_response": 0, "partial": 0, "cancelled": 0,
                                      "reminders": 0, "call_tasks": 0}
    assert len(outbox_for(checkin)) == 2
    assert _tasks(patient) == []
    clock.set(MONDAY + timedelta(hours=72))
    assert chase_non_responders()["call_tasks"] == 3
    (task,) = _tasks(patient)
    assert (task.kind, task.checkin_id, task.status) == ("call_patient", checkin.id, "open")
    chase_non_responders()
    assert len(_tasks(patient)) == 1
    _db.session.refresh(checkin)
    assert checkin.reminder_sent_at == MONDAY + timedelta(hours=24)
    assert checkin.call_task_created_at == MONDAY + timedelta(hours=72)


def test_an_answer_restarts_the_waiting_time(world, clock):
    patient = world.patient
    checkin = start_one(patient)
    clock.advance(hours=4)
    sms(patient, "0")
    _db.session.commit()
    clock.advance(hours=23)
    chase_non_responders()
    assert len(outbox_for(checkin)) == 1  # 23 h since the answer: no reminder yet
    clock.advance(hours=1)
    chase_non_responders()
    assert "fièvre" in outbox_for(checkin)[-1].body  # the pending question is the temperature
    clock.advance(hours=47)
    chase_non_responders()
    assert _tasks(patient) == []
    clock.advance(hours=1)
    chase_non_responders()
    assert len(_tasks(patient)) == 1


def test_nothing_is_sent_at_night(world, clock):
    patient = world.patient  # asked on Mondays at 10:00, Paris time
    plan_checkins()
    clock.set(MONDAY.replace(hour=21, minute=30))  # 22:30 in Paris: the starter was down all day
    assert start_due_checkins()["waiting"] == 3
    assert checkins_of(patient)[0].status == CheckInStatus.SCHEDULED
    clock.set(MONDAY + timedelta(hours=24))  # Tuesday 10:30
    assert start_due_checkins()["sms"] == 3
    checkin = checkins_of(patient)[0]
    clock.set(MONDAY.replace(day=2, hour=22, minute=30))  # Tuesday 23:30 local: a night owl answers
    sms(patient, "0")
    _db.session.commit()
    clock.set(MONDAY.replace(day=3, hour=22, minute=31))  # 24 h later, 23:31 local: not now
    chase_non_responders()
    assert len(outbox_for(checkin)) == 1
    clock.set(MONDAY.replace(day=4, hour=8, minute=59))  # Thursday 09:59 local
    chase_non_responders()
    assert len(outbox_for(checkin)) == 1
    clock.set(MONDAY.replace(day=4, hour=9, minute=0))  # 10:00 local: the patient's hour
    chase_non_responders()
    assert outbox_for(checkin)[-1].purpose == "checkin_reminder"


def _week(clock, n):
    """Monday of week ``n``: close what ended, plan, start."""
    clock.set(MONDAY + timedelta(weeks=n))
    summary = chase_non_responders()
    plan_checkins()
    start_due_checkins()
    return summary


def test_no_response_at_period_end_and_one_alert_after_two_misses(world, clock):
    patient = world.patient
    _week(clock, 0)
    clock.set(MONDAY + timedelta(days=6, hours=23))
    assert chase_non_responders()["closed"] == 0
    summary = _week(clock, 1)
    assert summary["no_response"] == 3
    first = checkins_of(patient)[0]
    assert first.status == CheckInStatus.NO_RESPONSE and first.closed_at == MONDAY + timedelta(weeks=1)
    assert _alerts(patient, "no_response") == []
    _week(clock, 2)  # second miss in a row
    (alert,) = _alerts(patient, "no_response")
    assert (alert.severity, alert.reason_code) == ("orange", "two_checkins_unanswered")
    assert alert.checkin_id == checkins_of(patient)[1].id
    chase_non_responders()
    _week(clock, 3)  # third miss: the same run of misses, no new alert
    assert len(_alerts(patient, "no_response")) == 1
    clock.advance(minutes=1)
    assert non_responders(world.nurse, now=clock.now, days=0) == []  # this week's was sent just now
    clock.advance(hours=24)
    rows = non_responders(world.nurse, now=clock.now, days=0)
    assert {r.checkin.status for r in rows} == {CheckInStatus.SENT}
    rows = non_responders(world.nurse, now=clock.now)
    assert patient.id in {r.patient.id for r in rows}
    assert all(r.patient.site_id == world.site.id for r in rows)  # the other site's patient is not shown
    assert non_responders(world.other_nurse, now=clock.now)[0].patient.id == world.other_patient.id


def test_partial_answers_close_as_partial_and_break_the_run(world, clock):
    patient = world.patient
    _week(clock, 0)
    _week(clock, 1)  # week 0: no response
    sms(patient, "0")  # week 1: one answer
    _db.session.commit()
    _week(clock, 2)
    statuses = [c.status for c in checkins_of(patient)]
    assert statuses[:2] == [CheckInStatus.NO_RESPONSE, CheckInStatus.PARTIAL]
    _week(clock, 3)  # week 2: no response, but the week before was answered
    assert _alerts(patient, "no_response") == []
    history = checkin_history(patient.id)
    assert [r.checkin.status for r in history] == [CheckInStatus.SENT, CheckInStatus.NO_RESPONSE,
                                                   CheckInStatus.PARTIAL, CheckInStatus.NO_RESPONSE]
    (answer,) = history[2].answers  # newest first
    # 8 March is day 16 of the patient's cycle: the break week's question.
    assert (answer.item_code, answer.value, answer.parsed) == ("dose_in_break", False, True)
    assert answer.question.startswith("Pendant votre période de pause")


def test_a_checkin_never_sent_is_cancelled_not_held_against_the_patient(world, clock):
    patient = world.patient
    plan_checkins()  # planned, but the starter never ran (scheduler down)
    clock.advance(days=7)
    summary = chase_non_responders()
    assert summary["cancelled"] == 3 and summary["no_response"] == 0
    (checkin,) = checkins_of(patient)
    assert (checkin.status, checkin.cancel_reason) == (CheckInStatus.CANCELLED, "not_sent")
    assert start_due_checkins()["sms"] == 0  # and it is not sent late either


def test_no_reminder_for_a_patient_paused_meanwhile(world, clock):
    patient = world.patient
    checkin = start_one(patient)
    patient.status = PatientStatus.HOSPITALISED
    _db.session.commit()
    clock.advance(hours=25)
    chase_non_responders()
    _db.session.refresh(checkin)
    assert (checkin.status, checkin.cancel_reason) == (CheckInStatus.CANCELLED, "not_eligible")
    assert len(outbox_for(checkin)) == 1


def test_reminder_text_fits_and_jobs_are_idempotent(world, clock):
    start_one(world.patient)
    clock.advance(hours=25)
    chase_non_responders()
    chase_non_responders()
    bodies = _db.session.scalars(select(OutboxEntry.body).where(OutboxEntry.purpose == "checkin_reminder")).all()
    assert len(bodies) == 3
    assert all(b == t.reminder_sms(_current_item(world.patient), "fr", "Q1/11") for b in bodies)
    assert _db.session.scalar(select(func.count()).select_from(OutboxEntry)) == 6


def _current_item(patient):
    from app.pathways.checkins.engine import current_item

    return current_item(checkins_of(patient)[0])
