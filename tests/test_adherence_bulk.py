"""The nightly job's set-based path (PDC in SQL, answers in buckets) against the Python reference
(``compute.evaluate`` on each patient's rows), on random patients, on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
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


def _second_drug(db, circuit, patient_id, rng, today):
    """A second drug, with one prescription and no event (the patient stays on the SQL path)."""
    first = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient_id))
    inn = rng.choice([i for i in INNS if i != first.drug.inn])
    drug = factories.drug(inn)
    start = today - timedelta(days=rng.randint(20, 200))
    rx = Prescription(patient_id=patient_id, drug=drug, dose=rng.choice(["100 mg", "2 tablets"]),
                      frequency_per_day=drug.default_frequency_per_day, days_on=drug.default_days_on,
                      days_off=drug.default_days_off, start_date=start, prescriber=circuit.oncologist)
    db.session.add(rx)
    db.session.flush()
    pharmacist = circuit.community_pharmacist
    day = start
    while day <= today:
        days = rng.choice([14, 21, 28, 56])
        db.session.add(Dispensing(patient_id=patient_id, prescription_id=rx.id, drug_id=drug.id, strength="100 mg",
                                  quantity=days, days_supply=days, dispensed_on=day,
                                  organisation_id=pharmacist.organisation_id, recorded_by_id=pharmacist.id))
        day += timedelta(days=rng.choice([10, 28, 40, 75]))


@pytest.mark.parametrize("copy_threshold", [0, None], ids=["copy", "executemany"])
def test_nightly_job_stores_what_the_per_patient_recompute_computes(circuit, db, monkeypatch, copy_threshold):
    """Every column of every snapshot, and the alerts raised, are what ``evaluate`` gives each
    patient from its rows: simple courses (one drug or two, measured in SQL and by
    ``compute.simple_night``) and courses with a dose change (the Python measures) alike; the
    snapshots written through COPY on PostgreSQL (as at night) or by ``executemany``; a rerun
    the same day updates them in place and raises nothing again."""
    from app.adherence import services

    if copy_threshold is not None:
        monkeypatch.setattr(services, "COPY_THRESHOLD", copy_threshold)
    from app.adherence.models import AdherenceReport
    from app.care.models import Patient
    from app.triage.models import Alert
    from tests.test_adherence_recompute import _answer

    today, complex_ids = _population(db, circuit, n=30, seed=3)
    rng = random.Random(5)
    ids = db.session.scalars(select(Prescription.patient_id).order_by(Prescription.patient_id)).all()
    two_drugs = [pid for k, pid in enumerate(ids) if k % 4 == 1 and pid not in complex_ids]
    for pid in two_drugs:
        _second_drug(db, circuit, pid, rng, today)
    for k, pid in enumerate(ids):
        patient = db.session.get(Patient, pid)
        if k % 3:  # answers (the bucketed aggregates), a few with doses taken during a break
            for d in rng.sample(range(200), 8):
                when = utcnow() - timedelta(days=d, hours=rng.randint(0, 5))
                _answer(db, patient, when, "doses_missed", rng.choice([0, 0, 0, 1, 2, 4, 9]))
            if k % 5 == 0:
                _answer(db, patient, utcnow() - timedelta(days=rng.randint(0, 60)), "dose_in_break", True)
        if k % 4 == 0:  # professionals' reports, some older than a window
            for d in rng.sample(range(150), 2):
                db.session.add(AdherenceReport(patient_id=pid, professional_id=circuit.community_pharmacist.id,
                                               reported_on=today - timedelta(days=d),
                                               assessment=rng.choice(["good", "doubtful", "poor"])))
    db.session.commit()
    result = recompute_adherence()
    assert result["python_path"] >= 1 and result["skipped"] == 0
    stored = {(s.patient_id, s.window): s for s in db.session.scalars(
        select(AdherenceSnapshot).where(AdherenceSnapshot.computed_on == today))}
    raised = {(a.patient_id, a.reason_code, a.severity) for a in db.session.scalars(
        select(Alert).where(Alert.source == "adherence"))}
    stored_ids = sorted({pid for pid, _ in stored})
    assert set(ids) <= set(stored_ids)
    inputs = queries.load_inputs(stored_ids, today)
    expected_alerts, with_reports = set(), 0
    for pid in stored_ids:
        expected = compute.evaluate(inputs[pid], today, Settings())
        for window in ("30", "90", "start"):
            snap = stored[(pid, window)]
            worst = expected.worst(window)
            cov = worst.supply.windows[window] if worst else None
            assert snap.pdc == expected.pdc(window), (pid, window)
            assert (snap.needed_days, snap.covered_days) == ((cov.needed, cov.covered) if cov else (0, 0)), (pid, window)
            assert snap.self_report == expected.self_report(window), (pid, window)
            assert snap.professional_assessment == expected.professional[window], (pid, window)
            with_reports += snap.professional_assessment is not None
        expected_alerts |= {(pid, f.reason_code, f.severity) for f in expected.findings}
    assert raised == expected_alerts
    # Not a vacuous comparison: findings, reports, self-reports and two-drug patients are there.
    assert len(expected_alerts) >= 3 and with_reports >= 3 and len(two_drugs) >= 4
    assert sum(stored[(pid, "90")].self_report is not None for pid in stored_ids) >= 10
    first_stamp = max(s.updated_at for s in stored.values())
    db.session.remove()
    again = recompute_adherence()
    assert again["alerts"] == 0 and again["snapshots"] == len(stored)
    rows = db.session.scalars(select(AdherenceSnapshot).where(AdherenceSnapshot.computed_on == today)).all()
    assert len(rows) == len(stored) and min(r.updated_at for r in rows) > first_stamp
    assert {(r.patient_id, r.window): (r.pdc, r.self_report) for r in rows} == {
        key: (s.pdc, s.self_report) for key, s in stored.items()}
