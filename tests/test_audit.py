"""Every read and change of a patient record leaves an audit row that nobody can alter."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from app.core.audit import AuditEvent, AuditImmutableError


def _rows(db, **filters):
    return db.session.scalars(select(AuditEvent).filter_by(**filters).order_by(AuditEvent.id)).all()


def test_reading_a_patient_page_writes_an_audit_row(circuit, login, db):
    client = login(circuit.community_pharmacist)
    client.get(f"/patients/{circuit.patient.id}", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    (row,) = _rows(db, action="read", patient_id=circuit.patient.id)
    assert row.actor_id == circuit.community_pharmacist.id
    assert row.actor_label == circuit.community_pharmacist.email
    assert row.ip == "10.1.2.3"
    assert row.at.tzinfo is not None


def test_changing_a_patient_writes_an_audit_row_naming_the_fields(circuit, login, csrf_of, db):
    client = login(circuit.nurse)
    page = client.get(f"/patients/{circuit.patient.id}/edit").get_data(as_text=True)
    p = circuit.patient
    resp = client.post(f"/patients/{p.id}/edit", data={
        "csrf_token": csrf_of(page), "mrn": p.mrn, "ins": "", "last_name": p.last_name, "first_name": p.first_name,
        "birth_date": p.birth_date.isoformat(), "phone": "07 81 23 45 67", "language": "en", "channel": "sms",
        "checkin_weekday": "3", "checkin_hour": "9", "timezone": "Europe/Paris", "status": "active",
        "consent_given": "y", "consent_date": p.consent_date.isoformat(),
    })
    assert resp.status_code == 302, resp.get_data(as_text=True)
    (row,) = _rows(db, action="update", patient_id=p.id)
    assert row.actor_id == circuit.nurse.id
    assert set(row.detail["fields"]) == {"phone", "language", "checkin_weekday", "checkin_hour"}
    # Values are not copied into the audit log (it is read by admins, not clinicians).
    assert "+33781234567" not in str(row.detail)


def test_a_refused_access_is_logged(circuit, login, db):
    client = login(circuit.other_pharmacist)
    assert client.get(f"/patients/{circuit.patient.id}").status_code == 404
    (row,) = _rows(db, action="denied")
    assert row.patient_id == circuit.patient.id and row.actor_id == circuit.other_pharmacist.id


def test_audit_rows_cannot_be_updated_or_deleted_through_the_application(circuit, login, db):
    login(circuit.nurse).get(f"/patients/{circuit.patient.id}")
    row = _rows(db, action="read")[0]
    row.action = "tampered"
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, row.id))
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(AuditImmutableError):
        db.session.execute(update(AuditEvent).values(action="x"))
    db.session.rollback()
    with pytest.raises(AuditImmutableError):
        db.session.execute(delete(AuditEvent))
    db.session.rollback()
    assert db.session.get(AuditEvent, row.id).action == "read"


def test_no_route_offers_to_change_audit_rows(app):
    for rule in app.url_map.iter_rules():
        if "audit" in rule.rule:
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, f"{rule.rule} accepts {rule.methods}"
