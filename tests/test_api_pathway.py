"""REST API v1: prescriptions and their events, the enrolment, the drug catalogue."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.core.audit import AuditEvent
from app.core.time import utcnow
from app.pathways.models import (
    Enrolment,
    EnrolmentEvent,
    Prescription,
    PrescriptionEvent,
)
from tests.api_helpers import bearer, field_errors, row_counts
from tests.factories import drug


def _url(patient, suffix: str = "") -> str:
    return f"/api/v1/patients/{patient.id}{suffix}"


def _rx(patient) -> Prescription:
    from app.extensions import db

    return db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))


# ------------------------------------------------------------------ prescriptions

def test_list_prescriptions(circuit, client, db):
    resp = client.get(_url(circuit.patient, "/prescriptions"), headers=bearer(db, circuit.community_pharmacist))
    assert resp.status_code == 200
    [rx] = resp.get_json()["items"]
    assert rx["drug"]["inn"] == "capecitabine" and rx["prescriber"]["id"] == circuit.oncologist.id
    assert rx["events"] == [] and rx["end_date"] is None


def test_add_prescription_with_drug_defaults(circuit, client, db):
    today = utcnow().date().isoformat()
    body = {"drug_id": drug("imatinib").id, "dose": "400 mg", "start_date": today,
            "prescriber_id": circuit.oncologist.id}
    resp = client.post(_url(circuit.patient, "/prescriptions"), json=body,
                       headers=bearer(db, circuit.hospital_pharmacist))
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert created["drug"]["inn"] == "imatinib"
    assert (created["days_on"], created["days_off"], created["frequency_per_day"]) == (28, 0, 1)
    assert created["start_date"] == today
    rx = db.session.get(Prescription, created["id"])
    assert rx.recorded_by_id == circuit.hospital_pharmacist.id
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "prescription_add"))
    assert audit.patient_id == circuit.patient.id


def test_add_prescription_errors_name_fields(circuit, client, db):
    headers = bearer(db, circuit.oncologist)
    today = utcnow().date()
    base = {"drug_id": drug("imatinib").id, "dose": "400 mg", "start_date": today.isoformat(),
            "prescriber_id": circuit.oncologist.id}
    before = row_counts(db)
    for changes, field in (({"end_date": (today - timedelta(days=1)).isoformat()}, "end_date"),
                           ({"drug_id": 987654}, "drug_id"),
                           ({"dose": "  "}, "dose"),
                           ({"prescriber_id": circuit.nurse.id}, "prescriber_id"),
                           ({"prescriber_id": circuit.other_oncologist.id}, "prescriber_id"),
                           ({"days_on": 0}, "days_on"),
                           ({"start_date": "2024-02-30"}, "start_date"),
                           ({"frequency_per_day": 2.5}, "frequency_per_day")):
        resp = client.post(_url(circuit.patient, "/prescriptions"), json={**base, **changes}, headers=headers)
        assert resp.status_code == 422, changes
        assert field in field_errors(resp), (changes, field_errors(resp))
    assert row_counts(db) == before


def test_prescribing_needs_the_right_role_and_scope(circuit, client, db):
    body = {"drug_id": drug("imatinib").id, "dose": "400 mg", "start_date": utcnow().date().isoformat(),
            "prescriber_id": circuit.oncologist.id}
    assert client.post(_url(circuit.patient, "/prescriptions"), json=body,
                       headers=bearer(db, circuit.gp)).status_code == 403
    assert client.post(_url(circuit.patient, "/prescriptions"), json=body,
                       headers=bearer(db, circuit.other_oncologist)).status_code == 404
    assert client.get(_url(circuit.patient_no_team, "/prescriptions"),
                      headers=bearer(db, circuit.community_pharmacist)).status_code == 404


def test_prescription_events(circuit, client, db):
    rx = _rx(circuit.patient)
    headers = bearer(db, circuit.oncologist)
    url = _url(circuit.patient, f"/prescriptions/{rx.id}/events")
    today = utcnow().date().isoformat()
    resp = client.post(url, json={"kind": "dose_change", "effective_date": today, "new_dose": "750 mg",
                                  "reason": "Hand-foot grade 2"}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["kind"] == "dose_change" and resp.get_json()["recorded_by_id"] == circuit.oncologist.id
    db.session.expire_all()
    assert _rx(circuit.patient).dose == "750 mg"
    resp = client.post(url, json={"kind": "stop", "effective_date": today, "reason": "Progression"},
                       headers=headers)
    assert resp.status_code == 201
    db.session.expire_all()
    assert _rx(circuit.patient).end_date.isoformat() == today
    listed = client.get(_url(circuit.patient, "/prescriptions"), headers=headers).get_json()["items"][0]
    assert [e["kind"] for e in listed["events"]] == ["dose_change", "stop"]


def test_prescription_event_errors_and_denials(circuit, client, db):
    rx = _rx(circuit.patient)
    headers = bearer(db, circuit.nurse)
    url = _url(circuit.patient, f"/prescriptions/{rx.id}/events")
    today = utcnow().date()
    for body, field in (({"kind": "dose_change", "effective_date": today.isoformat(), "reason": "x"}, "new_dose"),
                        ({"kind": "pause", "effective_date": today.isoformat(), "reason": "x"}, "kind"),
                        ({"kind": "stop", "effective_date": today.isoformat(), "reason": ""}, "reason"),
                        ({"kind": "stop", "effective_date": (rx.start_date - timedelta(days=1)).isoformat(),
                          "reason": "x"}, "effective_date"),
                        ({"kind": "stop", "reason": "x"}, "effective_date")):
        resp = client.post(url, json=body, headers=headers)
        assert resp.status_code == 422, body
        assert field in field_errors(resp), (body, field_errors(resp))
    assert not db.session.scalars(select(PrescriptionEvent)).all()
    body = {"kind": "interruption", "effective_date": today.isoformat(), "reason": "Fever"}
    other_rx = _rx(circuit.patient_no_team)
    assert client.post(_url(circuit.patient, f"/prescriptions/{other_rx.id}/events"), json=body,
                       headers=headers).status_code == 404
    assert client.post(url, json=body, headers=bearer(db, circuit.community_nurse)).status_code == 403


# ------------------------------------------------------------------ enrolment

def test_get_enrolment(circuit, client, db):
    resp = client.get(_url(circuit.patient, "/enrolment"), headers=bearer(db, circuit.gp))
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["pathway"], body["sequence"], body["lead_team"], body["status"]) == ("A", "S2", "hospital", "active")
    assert body["events"][0]["kind"] == "enrolled"


def test_change_enrolment_records_who_and_why(circuit, client, db):
    resp = client.patch(_url(circuit.patient, "/enrolment"), headers=bearer(db, circuit.nurse),
                        json={"lead_team": "community", "reason": "Stable for 3 cycles"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["lead_team"] == "community"
    assert resp.get_json()["events"][-1]["reason"] == "Stable for 3 cycles"
    event = db.session.scalar(select(EnrolmentEvent).where(EnrolmentEvent.kind == "lead"))
    assert (event.from_value, event.to_value, event.actor_id) == ("hospital", "community", circuit.nurse.id)
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "enrolment_change"))
    assert audit.patient_id == circuit.patient.id and audit.actor_id == circuit.nurse.id


def test_change_enrolment_rules(circuit, client, db):
    url = _url(circuit.patient, "/enrolment")
    nurse = bearer(db, circuit.nurse)
    for body, field in (({"sequence": "S3"}, "reason"),
                        ({"sequence": "S3", "reason": "Stable"}, "sequence"),  # only the oncologist
                        ({"sequence": "S2", "reason": "Same"}, "sequence"),  # nothing changed
                        ({"pathway": "C", "reason": "x"}, "pathway"),
                        ({"reason": "x" * 501}, "reason")):
        resp = client.patch(url, json=body, headers=nurse)
        assert resp.status_code == 422, body
        assert field in field_errors(resp), (body, field_errors(resp))
    assert client.patch(url, json={"sequence": "S3", "reason": "Stable"},
                        headers=bearer(db, circuit.gp)).status_code == 403
    resp = client.patch(url, json={"sequence": "S3", "reason": "Stable"}, headers=bearer(db, circuit.oncologist))
    assert resp.status_code == 200 and resp.get_json()["sequence"] == "S3"
    db.session.expire_all()
    assert db.session.scalar(select(Enrolment).where(Enrolment.patient_id == circuit.patient.id)).sequence == "S3"


def test_enrolment_404_when_follow_up_ended(circuit, client, db):
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == circuit.patient.id))
    enrolment.active_patient_id = None
    enrolment.status = "ended"
    db.session.commit()
    resp = client.get(_url(circuit.patient, "/enrolment"), headers=bearer(db, circuit.nurse))
    assert resp.status_code == 404
    assert "enrolment" in resp.get_json()["error"]["message"]


# ------------------------------------------------------------------ catalogue

def test_drug_catalogue_for_any_clinician(circuit, client, db):
    resp = client.get("/api/v1/drugs", headers=bearer(db, circuit.community_nurse))
    assert resp.status_code == 200
    drugs = {d["inn"]: d for d in resp.get_json()["items"]}
    assert drugs["capecitabine"]["default_days_on"] == 14 and "diarrhoea" in drugs["capecitabine"]["monitored_symptoms"]
    assert drugs["lenalidomide"]["hospital_only"] is True
