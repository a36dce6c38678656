"""The nightly job's set-based path (PDC in SQL, answers in buckets) against the Python reference
(``compute.evaluate`` on each patient's rows), on random patients, on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from app.adherence import bulk, compute, queries
from app.adherence.findings import Settings
from app.adherence.models import AdherenceSnapshot, Dispensing
from app.adherence.tasks import recompute_adherence
from app.core.time import utcnow
from app.pathways.models import Prescription, PrescriptionEvent
from tests import factories

INNS = ["capecitabine", "imatinib", "palbociclib", "sunitinib", "abemaciclib"]


def _population(db, circuit, n=36, seed=11):
    rng = random.Random(seed)
    today = utcnow().date()
    pharmacist = circuit.community_pharmacist
    complex_ids = set()
    for k in range(n):
        start = today - timedelta(days=rng.randint(5, 400))
        p = factories.create_patient(circuit.site, drug_inn=rng.choice(INNS), start=start, care_team=[pharmacist])
        rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == p.id))
        if rng.random() < 0.25:
            rx.end_date = min(today, start + timedelta(days=rng.randint(10, 300)))
        if k % 9 == 4:  # a dose change: measured by Python only
            db.session.add(PrescriptionEvent(prescription=rx, kind="dose_change", new_dose="750 mg", reason="tox",
                                             effective_date=start + timedelta(days=3), recorded_by_id=circuit.nurse.id))
            complex_ids.add(p.id)
        day, step = start + timedelta(days=rng.randint(-10, 5)), None
        while day <= today:
            days = rng.choice([7, 14, 21, 28, 30, 42, 60])
            # A second box the same day is a confirmed double dispensing.
            db.session.add(Dispensing(patient_id=p.id, prescription_id=rx.id, drug_id=rx.drug_id, strength="1000 mg",
                                      quantity=days * rx.frequency_per_day, days_supply=days, dispensed_on=day,
                                      organisation_id=pharmacist.organisation_id, recorded_by_id=pharmacist.id,
                                      confirmed_duplicate=step == 0))
            step = rng.choice([0, 5, 14, 21, 28, 30, 35, 50, 70])
            day += timedelta(days=step)
    db.session.commit()
    return today, complex_ids


def test_sql_pdc_matches_the_python_reference(circuit, db):
    today, complex_ids = _population(db, circuit)
    sql = bulk.simple_coverage(today)
    ids = sorted({pid for pid, _ in sql} | complex_ids)
    reference = queries.load_inputs(ids, today)
    compared = 0
    for (pid, drug_id), measured in sql.items():
        assert pid not in complex_ids
        [expected] = [d for d in compute.evaluate(reference[pid], today, Settings()).drugs if d.drug_id == drug_id]
        got = compute._report_from(measured, expected.course)
        for window in ("30", "90", "start"):
            e, g = expected.supply.windows[window], got.windows[window]
            assert (g.start, g.needed, g.covered) == (e.start, e.needed, e.covered), (pid, window)
        assert got.stock_days == expected.supply.stock_days, pid
        assert measured.last_supply_days == expected.last_supply_days, pid
        compared += 1
    assert compared >= 25
    assert not complex_ids & {pid for pid, _ in sql}


def test_nightly_job_stores_what_the_per_patient_recompute_computes(circuit, db):
    today, _ = _population(db, circuit, n=24, seed=3)
    # Answers too, so the bucketed aggregates are checked along.
    from tests.test_adherence_recompute import _answer

    rng = random.Random(5)
    for p in db.session.scalars(select(Prescription.patient_id)).all()[:10]:
        from app.care.models import Patient

        patient = db.session.get(Patient, p)
        for d in rng.sample(range(200), 8):
            _answer(db, patient, utcnow() - timedelta(days=d, hours=rng.randint(0, 5)), "doses_missed", rng.randint(0, 4))
    db.session.commit()
    result = recompute_adherence()
    assert result["python_path"] >= 1 and result["skipped"] == 0
    stored = {(s.patient_id, s.window): s for s in db.session.scalars(
        select(AdherenceSnapshot).where(AdherenceSnapshot.computed_on == today))}
    ids = sorted({pid for pid, _ in stored})
    inputs = queries.load_inputs(ids, today)
    for pid in ids:
        expected = compute.evaluate(inputs[pid], today, Settings())
        for window in ("30", "90", "start"):
            snap = stored[(pid, window)]
            assert snap.pdc == expected.pdc(window), (pid, window)
            assert snap.self_report == expected.self_report(window), (pid, window)
