"""A nurse's phone follow-up uses the questionnaire and counts like an SMS check-in."""
from __future__ import annotations

from sqlalchemy import select

from app.pathways.checkins.models import Answer, CheckIn
from app.triage.models import Alert


def test_nurse_call_records_graded_answers_as_the_weeks_checkin(circuit, login, csrf_of, db):
    client = login(circuit.nurse)
    page = client.get(f"/patients/{circuit.patient.id}/calls/new").get_data(as_text=True)
    assert 'name="item-temperature"' in page and 'name="item-hand_foot"' in page  # capecitabine items
    form = {"csrf_token": csrf_of(page), "item-doses_missed": "1", "item-temperature": "38,6",
            "item-hand_foot": "deux", "item-diarrhoea": "banana"}
    resp = client.post(f"/patients/{circuit.patient.id}/calls/new", data=form)
    assert resp.status_code == 422 and 'data-field="diarrhoea"' in resp.get_data(as_text=True)
    assert db.session.scalar(select(CheckIn.id)) is None  # nothing half-written
    form["item-diarrhoea"] = "0"
    resp = client.post(f"/patients/{circuit.patient.id}/calls/new", data=form)
    assert resp.status_code == 302
    checkin = db.session.scalar(select(CheckIn).where(CheckIn.patient_id == circuit.patient.id))
    assert checkin.status == "completed"
    answers = {a.item_code: a for a in db.session.scalars(select(Answer).where(Answer.checkin_id == checkin.id))}
    assert {k: a.value for k, a in answers.items() if a.parsed} == {
        "doses_missed": 1, "temperature": 38.6, "hand_foot": 2, "diarrhoea": 0}
    assert all(a.source == "nurse_call" for a in answers.values())
    alerts = sorted((a.severity, a.reason_code) for a in db.session.scalars(select(Alert)))
    assert ("red", "fever") in alerts and ("orange", "hand_foot_grade_2_interrupt") in alerts


def test_community_professionals_cannot_record_a_nurse_call(circuit, login):
    assert login(circuit.gp).get(f"/patients/{circuit.patient.id}/calls/new").status_code == 403
