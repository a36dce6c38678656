"""Medication reconciliation: the community pharmacist sends the list, the hospital pharmacist reviews it."""
from __future__ import annotations

from sqlalchemy import func, select

from app.community.models import MedicationReconciliation


def _count(db):
    return db.session.scalar(select(func.count()).select_from(MedicationReconciliation))


def _submit(client, csrf_of, patient_id, **data):
    url = f"/patients/{patient_id}/reconciliation"
    token = csrf_of(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_submit_then_review(circuit, login, csrf_of, db):
    pharmacist = login(circuit.community_pharmacist)
    resp = _submit(pharmacist, csrf_of, circuit.patient.id, **{
        "lines-0-name": "Ramipril", "lines-0-dose": "5 mg", "lines-0-frequency": "1/day",
        "lines-1-name": "St John's wort", "lines-1-note": "herbal, self-medication"})
    assert resp.status_code == 302
    rec = db.session.scalar(select(MedicationReconciliation))
    assert rec.status == "submitted" and rec.submitted_by_id == circuit.community_pharmacist.id
    assert [line["name"] for line in rec.lines] == ["Ramipril", "St John's wort"]

    hospital = login(circuit.hospital_pharmacist)
    page = hospital.get(f"/patients/{circuit.patient.id}/reconciliation").get_data(as_text=True)
    assert "Ramipril" in page and f'name="r{rec.id}-note"' in page
    url = f"/patients/{circuit.patient.id}/reconciliation/{rec.id}/review"
    resp = hospital.post(url, data={"csrf_token": csrf_of(page), f"r{rec.id}-note": "  "})
    assert resp.status_code == 422 and f'data-field="r{rec.id}-note"' in resp.get_data(as_text=True)
    db.session.refresh(rec)
    assert rec.status == "submitted"
    resp = hospital.post(url, data={"csrf_token": csrf_of(page),
                                    f"r{rec.id}-note": "Stop St John's wort: interaction (CYP3A4)."})
    assert resp.status_code == 302
    db.session.refresh(rec)
    assert rec.status == "reviewed" and rec.reviewed_by_id == circuit.hospital_pharmacist.id
    assert rec.reviewed_at is not None and "CYP3A4" in rec.review_note


def test_invalid_lists_are_refused_inline_and_nothing_written(circuit, login, csrf_of, db):
    client = login(circuit.community_pharmacist)
    resp = _submit(client, csrf_of, circuit.patient.id)
    assert resp.status_code == 422 and 'data-field="nothing_else"' in resp.get_data(as_text=True)
    resp = _submit(client, csrf_of, circuit.patient.id, **{"lines-2-dose": "10 mg"})
    assert resp.status_code == 422 and 'data-field="lines-2-name"' in resp.get_data(as_text=True)
    assert _count(db) == 0
    assert _submit(client, csrf_of, circuit.patient.id, nothing_else="y").status_code == 302
    assert db.session.scalar(select(MedicationReconciliation)).lines == []


def test_only_the_community_pharmacist_submits_and_other_pharmacies_see_nothing(circuit, login, csrf_of, db):
    hospital = login(circuit.hospital_pharmacist)
    assert _submit(hospital, csrf_of, circuit.patient.id, nothing_else="y").status_code == 403
    other = login(circuit.other_pharmacist)
    assert other.get(f"/patients/{circuit.patient.id}/reconciliation").status_code == 404
    token = csrf_of(other.get("/account/tokens").get_data(as_text=True))
    resp = other.post(f"/patients/{circuit.patient.id}/reconciliation", data={"csrf_token": token,
                                                                              "nothing_else": "y"})
    assert resp.status_code == 404
    assert _count(db) == 0
