"""Pharmaceutical interviews: the schedule of the 2020 convention, the form, validation, access."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from app.community.models import PharmacistInterview
from app.community.schedule import INTERVIEW_QUESTIONS, Due, next_interview
from app.core.audit import AuditEvent
from app.core.time import utcnow

START = date(2025, 1, 6)


def test_year_one_goes_initial_then_daily_life_then_adherence():
    assert next_interview(START, [], hormonal=False) == Due("initial", START)
    after_initial = next_interview(START, [("initial", START)], hormonal=False)
    assert after_initial == Due("daily_life_side_effects", START + timedelta(days=30))
    held = [("initial", START), ("daily_life_side_effects", date(2025, 2, 10))]
    assert next_interview(START, held, hormonal=False) == Due("adherence", date(2025, 2, 10) + timedelta(days=60))


def test_later_years_two_thematic_interviews_or_one_for_hormone_drugs():
    held = [("initial", START), ("daily_life_side_effects", date(2025, 2, 10)), ("adherence", date(2025, 4, 10))]
    year_two = START + timedelta(days=365)
    assert next_interview(START, held, hormonal=False) == Due("daily_life_side_effects", year_two)
    later = held + [("daily_life_side_effects", date(2026, 1, 20))]
    assert next_interview(START, later, hormonal=False) == Due("adherence", date(2026, 1, 20) + timedelta(days=182))
    assert next_interview(START, later, hormonal=True) == Due("adherence", date(2026, 1, 20) + timedelta(days=365))


def _answers(kind, answer="yes", skip=()):
    data = {}
    for q in INTERVIEW_QUESTIONS[kind]:
        if q.code not in skip:
            data[f"q_{q.code}"] = answer
        data[f"c_{q.code}"] = "ok"
    return data


def _count(db):
    return db.session.scalar(select(func.count()).select_from(PharmacistInterview))


def test_pharmacist_records_the_initial_interview(circuit, login, csrf_of, db):
    client = login(circuit.community_pharmacist)
    url = f"/patients/{circuit.patient.id}/interviews/new"
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="q_knows_drug"' in html  # the next due interview (initial) is proposed
    today = utcnow().date()
    resp = client.post(url + "?kind=initial", data={"csrf_token": csrf_of(html), "held_on": today.isoformat(),
                                                    "notes": "Pill box given", **_answers("initial")})
    assert resp.status_code == 302
    row = db.session.scalar(select(PharmacistInterview))
    assert row.kind == "initial" and row.pharmacist_id == circuit.community_pharmacist.id
    assert row.answers["knows_drug"] == {"answer": "yes", "comment": "ok"}
    assert row.next_due_kind == "daily_life_side_effects" and row.next_due_on == today + timedelta(days=30)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "interview_add")).patient_id == \
        circuit.patient.id
    patient_page = client.get(f"/patients/{circuit.patient.id}").get_data(as_text=True)
    assert 'id="interview-list"' in patient_page and "Pill box given" in patient_page


def test_missing_answer_future_date_and_date_before_enrolment_are_refused_inline(circuit, login, csrf_of, db):
    client = login(circuit.hospital_pharmacist)
    url = f"/patients/{circuit.patient.id}/interviews/new?kind=adherence"
    token = csrf_of(client.get(url).get_data(as_text=True))
    tomorrow = utcnow().date() + timedelta(days=2)
    resp = client.post(url, data={"csrf_token": token, "held_on": tomorrow.isoformat(),
                                  **_answers("adherence", skip=("uses_reminder",))})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'data-field="q_uses_reminder"' in html and 'data-field="held_on"' in html
    long_ago = utcnow().date() - timedelta(days=400)
    resp = client.post(url, data={"csrf_token": token, "held_on": long_ago.isoformat(), **_answers("adherence")})
    assert resp.status_code == 422 and 'data-field="held_on"' in resp.get_data(as_text=True)
    assert _count(db) == 0


def test_pharmacist_of_another_pharmacy_gets_404_and_nothing_is_written(circuit, login, csrf_of, db):
    client = login(circuit.other_pharmacist)
    url = f"/patients/{circuit.patient.id}/interviews/new?kind=initial"
    assert client.get(url).status_code == 404
    token = csrf_of(client.get("/account/tokens").get_data(as_text=True))
    resp = client.post(url, data={"csrf_token": token, "held_on": utcnow().date().isoformat(),
                                  **_answers("initial")})
    assert resp.status_code == 404
    assert _count(db) == 0
    denied = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
    assert len(denied) == 2 and all(e.patient_id == circuit.patient.id for e in denied)
