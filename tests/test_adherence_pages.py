"""The dispensing page, the adherence report form and the patient page's section: who may do
what, per record, and what is shown."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.adherence.models import AdherenceReport, AdherenceSnapshot, Dispensing
from app.core.audit import AuditEvent
from app.core.time import utcnow
from app.pathways.models import Prescription


def _count(db, model, **where):
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.scalar(query)


def _form(db, patient, csrf, **kw):
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
    data = {"csrf_token": csrf, "drug_id": str(rx.drug_id), "strength": "500 mg", "quantity": "56",
            "days_supply": "", "dispensed_on": utcnow().date().isoformat(), "note": ""}
    data.update(kw)
    return data


def test_community_pharmacist_records_a_dispensing(circuit, login, csrf_of, db):
    p = circuit.patient
    client = login(circuit.community_pharmacist)
    resp = client.get(f"/patients/{p.id}/dispensings/new")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == p.id))
    # Prefilled from the current prescription.
    assert re.search(rf'<option selected value="{rx.drug_id}">capecitabine', html)
    assert 'value="1000 mg"' in html
    regimens = json.loads(re.search(r'id="dispensing-regimens">(.*?)</script>', html, re.DOTALL).group(1))
    assert regimens["regimens"][str(rx.drug_id)] == {"frequency": 2, "dose_mg": 1000.0, "days_on": 14,
                                                      "days_off": 7, "prescribed": True}
    resp = client.post(f"/patients/{p.id}/dispensings/new", data=_form(db, p, csrf_of(html)))
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/patients/{p.id}#adherence")
    d = db.session.scalar(select(Dispensing))
    assert (d.quantity, d.days_supply, d.recorded_by_id) == (56, 14, circuit.community_pharmacist.id)

    page = client.get(f"/patients/{p.id}").get_data(as_text=True)
    assert 'id="adherence"' in page and 'id="dispensing-list"' in page
    assert re.search(r'id="dispensing-list".*?>56</span></td>\s*<td[^>]*><span>14</span>', page, re.DOTALL)
    plot = json.loads(re.search(r'id="adherence-data">(.*?)</script>', page, re.DOTALL).group(1))
    assert plot["days"] == [utcnow().date().isoformat()]
    assert [s["code"] for s in plot["series"]] == ["pdc"]


def test_duplicate_through_the_page_needs_the_confirm_box(circuit, login, csrf_of, db):
    p = circuit.patient
    client = login(circuit.community_pharmacist)
    csrf = csrf_of(client.get(f"/patients/{p.id}/dispensings/new").get_data(as_text=True))
    assert client.post(f"/patients/{p.id}/dispensings/new", data=_form(db, p, csrf)).status_code == 302
    resp = client.post(f"/patients/{p.id}/dispensings/new", data=_form(db, p, csrf))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'data-warning="duplicate"' in html and 'id="confirm"' in html
    assert re.search(r'name="confirm_codes" type="hidden" value="duplicate"', html)
    assert _count(db, Dispensing) == 1
    # Ticking the box without the codes of the warning shown confirms nothing.
    resp = client.post(f"/patients/{p.id}/dispensings/new", data=_form(db, p, csrf, confirm="y"))
    assert resp.status_code == 422 and _count(db, Dispensing) == 1
    resp = client.post(f"/patients/{p.id}/dispensings/new",
                       data=_form(db, p, csrf, confirm="y", confirm_codes="duplicate"))
    assert resp.status_code == 302 and _count(db, Dispensing) == 2


def test_validation_errors_are_shown_beside_the_fields(circuit, login, csrf_of, db):
    p = circuit.patient
    client = login(circuit.community_pharmacist)
    csrf = csrf_of(client.get(f"/patients/{p.id}/dispensings/new").get_data(as_text=True))
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    resp = client.post(f"/patients/{p.id}/dispensings/new",
                       data=_form(db, p, csrf, quantity="0", dispensed_on=tomorrow))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'data-field="quantity"' in html and 'data-field="dispensed_on"' in html
    assert _count(db, Dispensing) == 0


@pytest.mark.parametrize("who", ["other_pharmacist", "community_pharmacist"])
def test_a_pharmacist_cannot_reach_another_pharmacys_patient(circuit, login, csrf_of, db, who):
    """other_pharmacist is not in circuit.patient's team; community_pharmacist not in other_patient's."""
    target = circuit.patient if who == "other_pharmacist" else circuit.other_patient
    client = login(circuit.role(who))
    csrf = csrf_of(client.get("/account/tokens").get_data(as_text=True))
    assert client.get(f"/patients/{target.id}/dispensings/new").status_code == 404
    assert client.post(f"/patients/{target.id}/dispensings/new", data=_form(db, target, csrf)).status_code == 404
    resp = client.post(f"/patients/{target.id}/adherence-reports", data={"csrf_token": csrf, "ar-assessment": "good"})
    assert resp.status_code == 404
    assert client.get(f"/patients/{target.id}").status_code == 404
    assert _count(db, Dispensing) == 0 and _count(db, AdherenceReport) == 0
    assert _count(db, AdherenceSnapshot) == 0
    assert _count(db, AuditEvent, action="denied", patient_id=target.id) == 4


def test_only_pharmacists_record_dispensings(circuit, login, db):
    for who in ("gp", "community_nurse", "nurse", "oncologist"):
        assert login(circuit.role(who)).get(f"/patients/{circuit.patient.id}/dispensings/new").status_code == 403
    assert login(circuit.hospital_pharmacist).get(f"/patients/{circuit.patient.id}/dispensings/new").status_code == 200


def test_gp_records_an_adherence_report_and_oncologist_cannot(circuit, login, csrf_of, db):
    p = circuit.patient
    client = login(circuit.gp)
    page = client.get(f"/patients/{p.id}").get_data(as_text=True)
    assert 'id="adherence-report-form"' in page and 'id="record-dispensing"' not in page
    resp = client.post(f"/patients/{p.id}/adherence-reports",
                       data={"csrf_token": csrf_of(page), "ar-assessment": "poor", "ar-doses_missed_estimate": "4",
                             "ar-note": "Stopped for a week"})
    assert resp.status_code == 302
    report = db.session.scalar(select(AdherenceReport))
    assert (report.assessment, report.doses_missed_estimate, report.professional_id) == ("poor", 4, circuit.gp.id)
    page = client.get(f"/patients/{p.id}").get_data(as_text=True)
    assert "Stopped for a week" in page
    plot = json.loads(re.search(r'id="adherence-data">(.*?)</script>', page, re.DOTALL).group(1))
    assert [s["code"] for s in plot["series"]] == ["professional"] and plot["series"][0]["values"] == [40]

    onco = login(circuit.oncologist)
    csrf = csrf_of(onco.get("/account/tokens").get_data(as_text=True))
    assert onco.post(f"/patients/{p.id}/adherence-reports",
                     data={"csrf_token": csrf, "ar-assessment": "good"}).status_code == 403
    assert _count(db, AdherenceReport) == 1


def test_section_renders_nothing_for_a_viewer_with_no_data_and_nothing_to_do(circuit, login, db):
    page = login(circuit.oncologist).get(f"/patients/{circuit.patient.id}").get_data(as_text=True)
    assert 'id="adherence"' not in page


def test_section_shows_gaps_and_doses_taken_during_a_break(circuit, login, db):
    from app.pathways.checkins.models import Answer, CheckIn

    p = circuit.patient
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == p.id))
    pharmacist = circuit.community_pharmacist
    db.session.add(Dispensing(patient_id=p.id, prescription_id=rx.id, drug_id=rx.drug_id, strength="500 mg",
                              quantity=56, days_supply=14, dispensed_on=rx.start_date,
                              organisation_id=pharmacist.organisation_id, recorded_by_id=pharmacist.id))
    now = utcnow()
    checkin = CheckIn(patient_id=p.id, period_key="brk", sequence="S2", scheduled_at=now,
                      closes_at=now + timedelta(days=7), channel="sms", status="completed")
    db.session.add(checkin)
    db.session.flush()
    db.session.add(Answer(checkin_id=checkin.id, item_code="dose_in_break", raw_text="oui", value=True, parsed=True,
                          source="sms", answered_at=now))
    db.session.commit()
    page = login(circuit.nurse).get(f"/patients/{p.id}").get_data(as_text=True)
    assert 'id="adherence-break-doses"' in page
    # Cycle 2 (from day 21) had no supply: a gap still open.
    assert re.search(r'id="adherence-gaps">.*?capecitabine', page, re.S)
    assert 'data-finding="adherence_pdc_low"' in page
