"""The "My patients" work list: own care-team patients only, with what is due from each professional."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.adherence.models import Dispensing
from app.community.models import MedicationReconciliation, Visit
from app.core.time import utcnow
from app.pathways.models import Drug


def test_community_roles_see_only_their_own_patients(circuit, login):
    for prof in (circuit.community_pharmacist, circuit.gp, circuit.community_nurse):
        html = login(prof).get("/community/").get_data(as_text=True)
        assert f'data-patient="{circuit.patient.id}"' in html
        assert f'data-patient="{circuit.other_patient.id}"' not in html
        assert f'data-patient="{circuit.patient_no_team.id}"' not in html
    html = login(circuit.other_pharmacist).get("/community/").get_data(as_text=True)
    assert f'data-patient="{circuit.other_patient.id}"' in html
    assert f'data-patient="{circuit.patient.id}"' not in html


def test_pharmacist_sees_interview_and_refill_due(circuit, login, db):
    today = utcnow().date()
    drug = db.session.scalar(select(Drug).where(Drug.inn == "capecitabine"))
    db.session.add(Dispensing(patient_id=circuit.patient.id, drug_id=drug.id, strength="500 mg", quantity=56,
                              days_supply=14, dispensed_on=today - timedelta(days=10),
                              organisation_id=circuit.community_pharmacist.organisation_id,
                              recorded_by_id=circuit.community_pharmacist.id))
    db.session.commit()
    html = login(circuit.community_pharmacist).get("/community/").get_data(as_text=True)
    row = html.split(f'data-patient="{circuit.patient.id}"')[1].split("</tr>")[0]
    assert 'data-due="interview"' in row and "kind=initial" in row
    assert 'data-due="refill"' in row


def test_gp_sees_missing_visit_until_one_is_recorded(circuit, login, db):
    client = login(circuit.gp)
    html = client.get("/community/").get_data(as_text=True)
    assert 'data-due="visit"' in html
    db.session.add(Visit(patient_id=circuit.patient.id, professional_id=circuit.gp.id, visit_on=utcnow().date(),
                         kind="office", side_effects=[]))
    db.session.commit()
    html = client.get("/community/").get_data(as_text=True)
    assert f'data-patient="{circuit.patient.id}"' in html and 'data-due="visit"' not in html


def test_hospital_pharmacist_sees_pending_reconciliations(circuit, login, db):
    client = login(circuit.hospital_pharmacist)
    assert f'data-patient="{circuit.patient.id}"' not in client.get("/community/").get_data(as_text=True)
    db.session.add(MedicationReconciliation(patient_id=circuit.patient.id, lines=[],
                                            submitted_by_id=circuit.community_pharmacist.id))
    db.session.commit()
    html = client.get("/community/").get_data(as_text=True)
    assert f'data-patient="{circuit.patient.id}"' in html and 'data-due="reconciliation"' in html


def test_hospital_nurse_has_no_community_page(circuit, login):
    assert login(circuit.nurse).get("/community/").status_code == 403
