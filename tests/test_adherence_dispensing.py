"""Recording dispensings: days of supply, validation, confirmations, refill warnings."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.adherence import services
from app.adherence.models import AdherenceReport, AdherenceSnapshot, Dispensing
from app.core.audit import AuditEvent
from app.core.errors import ValidationFailed
from app.core.time import set_clock
from app.pathways.models import Prescription
from tests import factories


def _rx(db, patient):
    return db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))


def _at(db, patient, offset_days):
    """Fix the clock ``offset_days`` after the start of the patient's prescription (noon UTC)."""
    start = _rx(db, patient).start_date
    set_clock(datetime.combine(start + timedelta(days=offset_days), time(12), tzinfo=UTC))
    return start + timedelta(days=offset_days)


def _data(db, patient, **kw):
    rx = _rx(db, patient)
    data = {"drug_id": rx.drug_id, "strength": "500 mg", "quantity": 56, "days_supply": None,
            "dispensed_on": rx.start_date, "note": ""}
    data.update(kw)
    return data


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_days_of_supply_count_on_days_of_the_cycle(circuit, db):
    # Capecitabine 1000 mg twice a day, 14 days on / 7 off; 500 mg tablets: 4 a day, 56 = one cycle.
    _at(db, circuit.patient, 2)
    d, warnings = services.record_dispensing(circuit.patient, _data(db, circuit.patient), circuit.community_pharmacist)
    assert d.days_supply == 14 and warnings == []
    assert d.prescription_id == _rx(db, circuit.patient).id
    assert d.organisation_id == circuit.community_pharmacist.organisation_id
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "dispensing_add", AuditEvent.patient_id == circuit.patient.id)) == 1
    # The adherence of the day is recomputed at once.
    windows = set(db.session.scalars(select(AdherenceSnapshot.window).where(
        AdherenceSnapshot.patient_id == circuit.patient.id)))
    assert windows == {"30", "90", "start"}


def test_days_of_supply_can_be_given_by_the_pharmacist(circuit, db):
    _at(db, circuit.patient, 2)
    d, _ = services.record_dispensing(circuit.patient, _data(db, circuit.patient, days_supply=10),
                                      circuit.community_pharmacist)
    assert d.days_supply == 10


@pytest.mark.parametrize("quantity", [0, -3, None])
def test_quantity_must_be_at_least_one(circuit, db, quantity):
    _at(db, circuit.patient, 2)
    with pytest.raises(ValidationFailed) as exc:
        services.record_dispensing(circuit.patient, _data(db, circuit.patient, quantity=quantity),
                                   circuit.community_pharmacist)
    assert "quantity" in exc.value.errors
    assert _count(db, Dispensing) == 0


def test_date_cannot_be_in_the_future_nor_before_the_prescription(circuit, db):
    today = _at(db, circuit.patient, 2)
    start = _rx(db, circuit.patient).start_date
    for when in (today + timedelta(days=1), start - timedelta(days=1)):
        with pytest.raises(ValidationFailed) as exc:
            services.record_dispensing(circuit.patient, _data(db, circuit.patient, dispensed_on=when),
                                       circuit.community_pharmacist)
        assert "dispensed_on" in exc.value.errors
    assert _count(db, Dispensing) == 0


def test_unknown_drug_is_refused(circuit, db):
    _at(db, circuit.patient, 2)
    with pytest.raises(ValidationFailed) as exc:
        services.record_dispensing(circuit.patient, _data(db, circuit.patient, drug_id=99999),
                                   circuit.community_pharmacist)
    assert "drug_id" in exc.value.errors


def test_same_dispensing_twice_needs_an_explicit_confirmation(circuit, db):
    _at(db, circuit.patient, 2)
    p, pharmacist = circuit.patient, circuit.community_pharmacist
    services.record_dispensing(p, _data(db, p), pharmacist)
    with pytest.raises(services.NeedsConfirmation) as exc:
        services.record_dispensing(p, _data(db, p), pharmacist)
    assert exc.value.codes == ["duplicate"]
    assert _count(db, Dispensing) == 1
    second, warnings = services.record_dispensing(p, _data(db, p), pharmacist, confirm_duplicate=True)
    assert second.confirmed_duplicate is True
    assert "early_refill" in {w.code for w in warnings}  # a second box the same day is early
    # Another quantity, or another pharmacy, is not the same dispensing.
    services.record_dispensing(p, _data(db, p, quantity=28), pharmacist)
    services.record_dispensing(p, _data(db, p), circuit.hospital_pharmacist)
    assert _count(db, Dispensing) == 4


def test_the_database_itself_refuses_an_unconfirmed_duplicate(circuit, db):
    _at(db, circuit.patient, 2)
    p = circuit.patient
    first, _ = services.record_dispensing(p, _data(db, p), circuit.community_pharmacist)
    db.session.commit()
    fields = {c: getattr(first, c) for c in ("patient_id", "prescription_id", "drug_id", "strength", "quantity",
                                              "days_supply", "dispensed_on", "organisation_id", "recorded_by_id")}
    db.session.add(Dispensing(**fields, confirmed_duplicate=False))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    db.session.add(Dispensing(**fields, confirmed_duplicate=True))
    db.session.flush()


def test_a_drug_not_prescribed_needs_an_explicit_confirmation(circuit, db):
    _at(db, circuit.patient, 2)
    p = circuit.patient
    imatinib = factories.drug("imatinib")
    data = _data(db, p, drug_id=imatinib.id, strength="400 mg", quantity=30)
    with pytest.raises(services.NeedsConfirmation) as exc:
        services.record_dispensing(p, data, circuit.community_pharmacist)
    assert exc.value.codes == ["not_prescribed"]
    assert _count(db, Dispensing) == 0
    d, warnings = services.record_dispensing(p, data, circuit.community_pharmacist, confirm_unprescribed=True)
    assert d.prescription_id is None and d.days_supply == 30
    assert warnings[0].code == "not_prescribed"


def test_a_drug_whose_prescription_ended_is_not_prescribed(circuit, db):
    today = _at(db, circuit.patient, 20)
    rx = _rx(db, circuit.patient)
    rx.end_date = today - timedelta(days=1)
    db.session.flush()
    with pytest.raises(services.NeedsConfirmation) as exc:
        services.record_dispensing(circuit.patient, _data(db, circuit.patient, dispensed_on=today),
                                   circuit.community_pharmacist)
    assert exc.value.codes == ["not_prescribed"]


def test_early_and_late_refills_are_warned(circuit, db):
    p, pharmacist = circuit.patient, circuit.community_pharmacist
    start = _rx(db, p).start_date
    _at(db, p, 29)
    services.record_dispensing(p, _data(db, p, dispensed_on=start), pharmacist)
    # Day 3: 11 of the 14 days are left (> 20%).
    _, warnings = services.record_dispensing(p, _data(db, p, dispensed_on=start + timedelta(days=3),
                                                      quantity=56), pharmacist)
    assert [w.code for w in warnings] == ["early_refill"]
    other = circuit.patient_no_team
    other_start = _rx(db, other).start_date
    services.record_dispensing(other, _data(db, other, dispensed_on=other_start), circuit.hospital_pharmacist)
    # Cycle 2 starts on day 21; the box comes on day 29: 8 treatment days without supply.
    _, warnings = services.record_dispensing(other, _data(db, other, dispensed_on=other_start + timedelta(days=29)),
                                             circuit.hospital_pharmacist)
    assert [w.code for w in warnings] == ["late_refill"]
    assert "8" in warnings[0].message


def test_a_quantity_that_does_not_fit_the_regimen_is_warned(circuit, db):
    _at(db, circuit.patient, 2)
    p = circuit.patient
    _, warnings = services.record_dispensing(p, _data(db, p, quantity=50), circuit.community_pharmacist)
    assert [w.code for w in warnings] == ["quantity_mismatch"]  # 12.5 days of 4 tablets
    _, warnings = services.record_dispensing(circuit.patient_no_team, _data(db, circuit.patient_no_team, quantity=28),
                                             circuit.hospital_pharmacist)
    assert [w.code for w in warnings] == ["quantity_mismatch"]  # 7 days: half a cycle


def test_professional_report(circuit, db):
    today = _at(db, circuit.patient, 5)
    p = circuit.patient
    with pytest.raises(ValidationFailed) as exc:
        services.record_report(p, {"assessment": "excellent", "doses_missed_estimate": -1,
                                   "reported_on": today + timedelta(days=1)}, circuit.gp)
    assert set(exc.value.errors) == {"assessment", "doses_missed_estimate", "reported_on"}
    report = services.record_report(p, {"assessment": "doubtful", "doses_missed_estimate": 3, "note": "Forgets"},
                                    circuit.gp)
    assert report.reported_on == today and _count(db, AdherenceReport) == 1
    snapshot = db.session.scalar(select(AdherenceSnapshot).where(
        AdherenceSnapshot.patient_id == p.id, AdherenceSnapshot.window == "30"))
    assert snapshot.professional_assessment == "doubtful"
