"""GP and community nurse visits: recording, validation, duplicates, and the alerts they raise."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.community.models import Visit
from app.core.time import utcnow
from app.triage.models import Alert


def _post(client, csrf_of, patient_id, **data):
    url = f"/patients/{patient_id}/visits/new"
    token = csrf_of(client.get(url).get_data(as_text=True))
    base = {"csrf_token": token, "visit_on": utcnow().date().isoformat(), "kind": "home"}
    return client.post(url, data={**base, **data})


def _count(db, model=Visit):
    return db.session.scalar(select(func.count()).select_from(model))


def test_nurse_records_a_quiet_visit_without_alert(circuit, login, csrf_of, db):
    client = login(circuit.community_nurse)
    resp = _post(client, csrf_of, circuit.patient.id, systolic="132", diastolic="81", temperature="36,9",
                 weight_kg="64.5", **{"side_effects-0-symptom": "fatigue", "side_effects-0-grade": "1"},
                 actions_taken="Advice on rest")
    assert resp.status_code == 302
    visit = db.session.scalar(select(Visit))
    assert (visit.systolic, visit.diastolic, visit.temperature, visit.weight_kg) == (132, 81, 36.9, 64.5)
    assert visit.side_effects == [{"symptom": "fatigue", "grade": 1}]
    assert visit.professional_id == circuit.community_nurse.id and visit.alert_id is None
    assert _count(db, Alert) == 0
    html = client.get(f"/patients/{circuit.patient.id}").get_data(as_text=True)
    assert f'data-visit="{visit.id}"' in html and "Advice on rest" in html


def test_grade_3_side_effect_raises_a_red_alert_seen_in_the_site_triage(circuit, login, csrf_of, db):
    gp = login(circuit.gp)
    resp = _post(gp, csrf_of, circuit.patient.id, kind="office",
                 **{"side_effects-0-symptom": "diarrhoea", "side_effects-0-grade": "3"})
    assert resp.status_code == 302
    alert = db.session.scalar(select(Alert))
    visit = db.session.scalar(select(Visit))
    assert alert.severity == "red" and alert.source == "professional"
    assert alert.reason_code == "visit_severe_side_effect" and visit.alert_id == alert.id
    assert circuit.gp.display_name in alert.summary and "grade 3 diarrhoea" in alert.summary
    queue = login(circuit.nurse).get("/triage").get_data(as_text=True)
    assert f'data-alert="{alert.id}"' in queue and "grade 3 diarrhoea" in queue


def test_fever_is_red_grade_2_and_concerns_are_orange_urgent_concern_red(circuit, login, csrf_of, db):
    gp = login(circuit.gp)
    assert _post(gp, csrf_of, circuit.patient.id, kind="phone", temperature="38.2").status_code == 302
    assert _post(gp, csrf_of, circuit.patient.id, kind="office",
                 **{"side_effects-0-symptom": "hand_foot", "side_effects-0-grade": "2"}).status_code == 302
    assert _post(gp, csrf_of, circuit.patient.id, kind="home", concern="y",
                 concern_text="Lives alone, confused about the days off").status_code == 302
    yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
    assert _post(gp, csrf_of, circuit.patient.id, kind="home", visit_on=yesterday, concern_urgent="y",
                 concern_text="Not eating for three days").status_code == 302
    alerts = db.session.scalars(select(Alert).order_by(Alert.id)).all()
    assert [(a.severity, a.reason_code) for a in alerts] == [
        ("red", "visit_fever"), ("orange", "visit_side_effect"), ("orange", "visit_concern"),
        ("red", "visit_concern")]
    assert "concern: Lives alone" in alerts[2].summary and "urgent concern" in alerts[3].summary


def test_invalid_values_are_refused_inline_and_nothing_is_written(circuit, login, csrf_of, db):
    gp = login(circuit.gp)
    future = (utcnow().date() + timedelta(days=3)).isoformat()
    resp = _post(gp, csrf_of, circuit.patient.id, visit_on=future, temperature="45", weight_kg="12",
                 systolic="120", diastolic="80",
                 **{"side_effects-0-symptom": "rash", "side_effects-0-grade": "5",
                    "side_effects-1-grade": "2"}, concern="y")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    for name in ("visit_on", "temperature", "weight_kg", "side_effects-0-grade", "side_effects-1-symptom",
                 "concern_text"):
        assert f'data-field="{name}"' in html, name
    assert _count(db) == 0 and _count(db, Alert) == 0


def test_the_same_visit_twice_is_refused_without_duplicate(circuit, login, csrf_of, db):
    nurse = login(circuit.community_nurse)
    grade_3 = {"side_effects-0-symptom": "mouth_sores", "side_effects-0-grade": "3"}
    assert _post(nurse, csrf_of, circuit.patient.id, **grade_3).status_code == 302
    resp = _post(nurse, csrf_of, circuit.patient.id, **grade_3)
    assert resp.status_code == 422
    assert 'data-field="visit_on"' in resp.get_data(as_text=True)
    assert _count(db) == 1 and _count(db, Alert) == 1
    # Another kind the same day is another visit.
    assert _post(nurse, csrf_of, circuit.patient.id, kind="phone").status_code == 302
    assert _count(db) == 2


def test_other_pharmacy_and_hospital_nurse_cannot_record_visits(circuit, login, csrf_of, db):
    other = login(circuit.other_pharmacist)
    assert other.get(f"/patients/{circuit.patient.id}/visits/new").status_code == 403  # not a visiting role
    nurse = login(circuit.nurse)
    assert nurse.get(f"/patients/{circuit.patient.id}/visits/new").status_code == 403
    assert _count(db) == 0
