"""REST API v1: patient list, enrolment, patient record and care team, with per-record access."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.care.models import CareTeamMember, Patient
from app.core.audit import AuditEvent
from app.core.time import utcnow
from app.pathways.models import Enrolment, Prescription
from tests.api_helpers import bearer, enrol_body, field_errors, row_counts

LIST = "/api/v1/patients"


def _names(resp) -> set[str]:
    assert resp.status_code == 200, resp.get_json()
    return {row["last_name"] for row in resp.get_json()["items"]}


# ------------------------------------------------------------------ list

def test_list_is_scoped_like_the_dashboard(circuit, client, db):
    assert _names(client.get(LIST, headers=bearer(db, circuit.nurse))) == {"Durand", "Lefevre"}
    assert _names(client.get(LIST, headers=bearer(db, circuit.community_pharmacist))) == {"Durand"}
    assert _names(client.get(LIST, headers=bearer(db, circuit.other_nurse))) == {"Moreau"}
    assert _names(client.get(LIST, headers=bearer(db, circuit.other_pharmacist))) == {"Moreau"}


def test_list_filters_and_pages(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    assert _names(client.get(LIST + "?q=dur", headers=headers)) == {"Durand"}
    assert _names(client.get(LIST + f"?q={circuit.patient_no_team.mrn}", headers=headers)) == {"Lefevre"}
    assert _names(client.get(LIST + "?sequence=S3", headers=headers)) == set()
    assert _names(client.get(LIST + "?status=active&sequence=", headers=headers)) == {"Durand", "Lefevre"}
    body = client.get(LIST + "?per_page=1&page=2", headers=headers).get_json()
    assert [r["last_name"] for r in body["items"]] == ["Lefevre"]
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (2, 2, 1, 2)
    row = client.get(LIST + "?q=dur", headers=headers).get_json()["items"][0]
    assert row["id"] == circuit.patient.id and row["sequence"] == "S2" and row["drug"] == "capecitabine"
    assert row["birth_date"] == "1955-03-14"


def test_list_rejects_bad_arguments_by_name(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    for query, field in (("per_page=101", "per_page"), ("per_page=0", "per_page"), ("page=abc", "page"),
                         ("sequence=S9", "sequence"), ("drug_id=x", "drug_id"), ("colour=blue", "colour"),
                         ("page=99999999999999999999", "page"), ("q=%00", "q")):
        resp = client.get(f"{LIST}?{query}", headers=headers)
        assert resp.status_code == 422, query
        assert field in field_errors(resp), query


# ------------------------------------------------------------------ enrol

def test_nurse_enrols_a_patient_in_one_request(circuit, client, db):
    resp = client.post(LIST, json=enrol_body(circuit), headers=bearer(db, circuit.nurse))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/api/v1/patients/{body['id']}")
    assert body["phone"] == "+33612345678"
    assert body["site"]["code"] == "LYN"
    assert body["enrolment"]["sequence"] == "S1" and body["enrolment"]["pathway"] == "A"
    patient = db.session.get(Patient, body["id"])
    assert patient.consent_recorded_by_id == circuit.nurse.id
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
    assert (rx.days_on, rx.days_off, rx.frequency_per_day) == (14, 7, 2)  # capecitabine defaults
    assert {m.professional_id for m in patient.care_team} == {circuit.oncologist.id, circuit.nurse.id}
    actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient.id)))
    assert {"create", "enrol", "prescription_add", "care_team_add"} <= actions


def test_oncologist_enrols_at_own_site(circuit, client, db):
    resp = client.post(LIST, json=enrol_body(circuit), headers=bearer(db, circuit.other_oncologist))
    # The prescriber is an oncologist of Lyon: refused for a patient of Tours.
    assert resp.status_code == 422 and "prescriber_id" in field_errors(resp)
    body = enrol_body(circuit, prescriber_id=circuit.other_oncologist.id)
    resp = client.post(LIST, json=body, headers=bearer(db, circuit.other_oncologist))
    assert resp.status_code == 201
    assert resp.get_json()["site"]["code"] == "TRS"


def test_only_patient_editors_enrol(circuit, client, db):
    tokens = [bearer(db, p) for p in (circuit.gp, circuit.community_pharmacist, circuit.hospital_pharmacist)]
    before = row_counts(db)
    for headers in tokens:
        resp = client.post(LIST, json=enrol_body(circuit), headers=headers)
        assert resp.status_code == 403
    after = row_counts(db)
    assert after["audit_event"] == before["audit_event"] + 3  # one denial each
    assert {k: v for k, v in after.items() if k != "audit_event"} == \
        {k: v for k, v in before.items() if k != "audit_event"}


def test_enrol_validation_names_every_field_and_writes_nothing(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    body = enrol_body(circuit, phone="12", mrn=circuit.patient.mrn, drug_id=999_999,
                      end_date=(utcnow().date() - timedelta(days=3)).isoformat(),
                      consent_given=False, consent_date=tomorrow, birth_date="01/06/1950", colour="blue")
    before = row_counts(db)
    resp = client.post(LIST, json=body, headers=headers)
    assert resp.status_code == 422
    errors = field_errors(resp)
    # type errors (birth_date, colour) and rule errors from the service in one answer
    assert {"phone", "mrn", "drug_id", "end_date", "consent_given", "birth_date", "colour"} <= set(errors)
    assert all(isinstance(m, str) and m for msgs in errors.values() for m in msgs)
    assert row_counts(db) == before


def test_enrol_single_rule_errors(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    today = utcnow().date()
    cases = [
        ({"phone": "+33 1 23 45 67 89"}, "phone"),  # landline for SMS
        ({"mrn": circuit.patient_no_team.mrn}, "mrn"),
        ({"end_date": (today - timedelta(days=1)).isoformat()}, "end_date"),
        ({"drug_id": 424242}, "drug_id"),
        ({"consent_given": ...}, "consent_given"),
        ({"consent_given": False}, "consent_given"),
        ({"consent_date": None}, "consent_date"),
        ({"sequence": "S7"}, "sequence"),
        ({"checkin_hour": "10"}, "checkin_hour"),
        ({"checkin_hour": 24}, "checkin_hour"),
        ({"consent_given": "yes"}, "consent_given"),
        ({"first_name": "A" * 101}, "first_name"),
        ({"last_name": "Ber\x00nard"}, "last_name"),
        ({"mrn": "LYN\ud800"}, "mrn"),
        ({"birth_date": ...}, "birth_date"),  # the services then run without it: still a 422
        ({"drug_id": 2**40}, "drug_id"),
    ]
    before = row_counts(db)
    for changes, field in cases:
        resp = client.post(LIST, json=enrol_body(circuit, **changes), headers=headers)
        assert resp.status_code == 422, changes
        assert field in field_errors(resp), (changes, field_errors(resp))
    assert row_counts(db) == before


# ------------------------------------------------------------------ read and update

def test_get_patient(circuit, client, db):
    resp = client.get(f"{LIST}/{circuit.patient.id}", headers=bearer(db, circuit.community_nurse))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["last_name"] == "Durand" and body["enrolment"]["lead_team"] == "hospital"
    assert body["consent_given"] is True and body["created_at"].endswith("+00:00")
    assert "password_hash" not in resp.get_data(as_text=True)


def test_per_record_denials(circuit, client, db):
    pharmacist = bearer(db, circuit.community_pharmacist)
    assert client.get(f"{LIST}/{circuit.patient_no_team.id}", headers=pharmacist).status_code == 404
    assert client.get(f"{LIST}/{circuit.other_patient.id}", headers=pharmacist).status_code == 404
    other_nurse = bearer(db, circuit.other_nurse)
    for suffix in ("", "/care-team", "/prescriptions", "/enrolment"):
        assert client.get(f"{LIST}/{circuit.patient.id}{suffix}", headers=other_nurse).status_code == 404
    assert client.get(f"{LIST}/424242", headers=other_nurse).status_code == 404
    resp = client.patch(f"{LIST}/{circuit.patient.id}", json={"checkin_hour": 9}, headers=bearer(db, circuit.gp))
    assert resp.status_code == 403
    assert db.session.get(Patient, circuit.patient.id).checkin_hour == 10


def test_nurse_updates_a_patient(circuit, client, db):
    resp = client.patch(f"{LIST}/{circuit.patient.id}", headers=bearer(db, circuit.nurse),
                        json={"phone": "0698765432", "channel": "voice", "checkin_weekday": 3, "ins": None})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["phone"] == "+33698765432" and resp.get_json()["checkin_weekday"] == 3
    patient = db.session.get(Patient, circuit.patient.id)
    assert (patient.phone, patient.channel) == ("+33698765432", "voice")


def test_update_errors_name_fields_and_change_nothing(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    url = f"{LIST}/{circuit.patient.id}"
    for body, field in (({"phone": "not a phone"}, "phone"), ({"mrn": circuit.patient_no_team.mrn}, "mrn"),
                        ({"first_name": None}, "first_name"), ({"status": "asleep"}, "status"),
                        ({"consent_given": False}, "consent_given"), ({"colour": "red"}, "colour"),
                        ({"timezone": "Mars/Olympus"}, "timezone")):
        resp = client.patch(url, json=body, headers=headers)
        assert resp.status_code == 422, body
        assert field in field_errors(resp), body
    resp = client.patch(url, json={"phone": "nope", "checkin_hour": "noon"}, headers=headers)
    assert set(field_errors(resp)) == {"phone", "checkin_hour"}
    patient = db.session.get(Patient, circuit.patient.id)
    assert patient.phone.startswith("+33612") and patient.status == "active"
    assert not db.session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).all()


# ------------------------------------------------------------------ care team

def test_care_team_read_and_add(circuit, client, db):
    url = f"{LIST}/{circuit.patient.id}/care-team"
    resp = client.get(url, headers=bearer(db, circuit.gp))
    assert resp.status_code == 200
    members = resp.get_json()["items"]
    assert {m["professional"]["id"] for m in members} >= {circuit.gp.id, circuit.community_pharmacist.id}
    assert all(set(m["professional"]) == {"id", "first_name", "last_name", "role"} for m in members)
    newcomer = bearer(db, circuit.other_pharmacist)
    assert client.get(f"{LIST}/{circuit.patient.id}", headers=newcomer).status_code == 404
    today = utcnow().date().isoformat()
    resp = client.post(url, json={"professional_id": circuit.other_pharmacist.id, "is_lead": True,
                                  "start_date": today}, headers=bearer(db, circuit.nurse))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["is_lead"] is True and resp.get_json()["role"] == "community_pharmacist"
    assert client.get(f"{LIST}/{circuit.patient.id}", headers=newcomer).status_code == 200
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "care_team_add"))
    assert audit.patient_id == circuit.patient.id and audit.actor_id == circuit.nurse.id


def test_care_team_add_errors_and_denials(circuit, client, db):
    url = f"{LIST}/{circuit.patient.id}/care-team"
    today = utcnow().date().isoformat()
    nurse = bearer(db, circuit.nurse)
    for body, field in (({"professional_id": circuit.gp.id, "start_date": today}, "professional_id"),
                        ({"professional_id": circuit.other_nurse.id, "start_date": today}, "professional_id"),
                        ({"professional_id": circuit.admin.id, "start_date": today}, "professional_id"),
                        ({"professional_id": circuit.other_pharmacist.id}, "start_date"),
                        ({"professional_id": "7", "start_date": today}, "professional_id")):
        resp = client.post(url, json=body, headers=nurse)
        assert resp.status_code == 422, body
        assert field in field_errors(resp), body
    body = {"professional_id": circuit.other_pharmacist.id, "start_date": today}
    assert client.post(url, json=body, headers=bearer(db, circuit.gp)).status_code == 403
    assert client.post(f"{LIST}/{circuit.other_patient.id}/care-team", json=body, headers=nurse).status_code == 404
    assert not db.session.scalars(select(CareTeamMember).where(
        CareTeamMember.professional_id == circuit.other_pharmacist.id,
        CareTeamMember.patient_id == circuit.patient.id)).all()


def test_enrolled_patient_reads_back_through_the_api(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    created = client.post(LIST, json=enrol_body(circuit), headers=headers).get_json()
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == created["id"]))
    got = client.get(f"{LIST}/{created['id']}", headers=headers).get_json()
    assert got["enrolment"]["id"] == enrolment.id
    assert got == {**created, "updated_at": got["updated_at"]}
