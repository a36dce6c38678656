"""The oncologist's pre-consultation summary: grades over time, self-reported doses, alerts."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from app.core.time import set_clock
from app.pathways.checkins.models import Answer, CheckIn
from app.pathways.checkins.questionnaire import seed_questionnaire
from app.triage import services


def _checkin(db, patient, when, answers, status="completed"):
    checkin = CheckIn(patient_id=patient.id, period_key=when.strftime("%G-W%V"), sequence="S2", scheduled_at=when,
                      closes_at=when + timedelta(days=7), channel="sms", status=status, started_at=when)
    db.session.add(checkin)
    db.session.flush()
    for code, value in answers.items():
        db.session.add(Answer(checkin_id=checkin.id, item_code=code, raw_text=str(value), value=value, parsed=True,
                              source="sms", answered_at=when))
    return checkin


def test_summary_shows_grades_over_time_missed_doses_and_alerts(circuit, login, db):
    seed_questionnaire()
    now = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    set_clock(now)
    p = circuit.patient
    # Diarrhoea as stools a day above usual (PRO-CTCAE): 2 is grade 1, 5 grade 2, plotted as grades.
    _checkin(db, p, now - timedelta(days=14), {"diarrhoea": 2, "hand_foot": 0, "doses_missed": 1, "temperature": 37.2})
    _checkin(db, p, now - timedelta(days=7), {"diarrhoea": 5, "hand_foot": 1, "doses_missed": 2, "temperature": 38.4})
    _checkin(db, p, now - timedelta(days=100), {"diarrhoea": 9})  # before the period
    _checkin(db, p, now - timedelta(days=1), {}, status="no_response")
    alert = services.raise_alert(patient_id=p.id, severity="red", source="checkin", reason_code="fever",
                                 summary="Temperature 38.4")
    services.resolve(alert, actor=circuit.nurse, note="ED visit, neutrophils normal")
    db.session.commit()

    client = login(circuit.oncologist)
    html = client.get(f"/patients/{p.id}/summary?since=2026-10-20").get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="grade-data">(.*?)</script>', html, re.S).group(1))
    assert data["days"] == ["2026-11-06", "2026-11-13"]
    diarrhoea = next(s for s in data["series"] if s["code"] == "diarrhoea")
    assert diarrhoea["values"] == [1, 2] and diarrhoea["label"] == "Diarrhée"
    assert "2 answered, 1 without answer, of 3" in html or "2 réponses" in html or 'id="summary-checkins"' in html
    assert re.search(r'id="summary-adherence">.*?</strong> 3', html, re.S)
    assert "38.4" in html and "ED visit, neutrophils normal" in html


def test_summary_is_for_the_hospital_team_and_is_audited(circuit, login, db):
    from app.core.audit import AuditEvent

    assert login(circuit.gp).get(f"/patients/{circuit.patient.id}/summary").status_code == 403
    assert login(circuit.other_oncologist).get(f"/patients/{circuit.patient.id}/summary").status_code == 404
    client = login(circuit.oncologist)
    assert client.get(f"/patients/{circuit.patient.id}/summary?since=garbage").status_code == 200
    assert AuditEvent.query.filter_by(patient_id=circuit.patient.id, object_type="Summary").count() == 1
