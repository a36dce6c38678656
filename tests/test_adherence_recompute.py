"""The nightly recompute, the recompute after an answer, findings raised once, and the bulk
(SQL) self-report checked against the Python reference."""
from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from app.adherence import compute, measures, queries
from app.adherence.findings import PDC_LOW, PDC_WATCH, Settings
from app.adherence.models import AdherenceSnapshot, Dispensing
from app.adherence.regimen import RxEvent, RxSpec, build_course
from app.adherence.tasks import recompute_adherence
from app.core.time import set_clock, utcnow
from app.pathways.checkins.models import Answer, CheckIn
from app.pathways.checkins.questionnaire import prescription_phase
from app.pathways.checkins.signals import answer_recorded
from app.pathways.models import Prescription, PrescriptionEvent
from app.triage import services as triage
from app.triage.models import Alert
from tests import factories

_keys = itertools.count(1)


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def _dispense(db, patient, on, quantity, days, strength="500 mg", org=None):
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
    db.session.add(Dispensing(patient_id=patient.id, prescription_id=rx.id, drug_id=rx.drug_id, strength=strength,
                              quantity=quantity, days_supply=days, dispensed_on=on,
                              organisation_id=org.id, recorded_by_id=org_member(db, org)))


def org_member(db, org):
    from app.care.models import Professional

    return db.session.scalar(select(Professional.id).where(Professional.organisation_id == org.id).limit(1))


def _answer(db, patient, when, code, value, key=None):
    checkin = CheckIn(patient_id=patient.id, period_key=key or f"t{next(_keys)}", sequence="S2",
                      scheduled_at=when, closes_at=when + timedelta(days=7), channel="sms", status="completed")
    db.session.add(checkin)
    db.session.flush()
    answer = Answer(checkin_id=checkin.id, item_code=code, raw_text=str(value), value=value, parsed=True,
                    source="sms", answered_at=when)
    db.session.add(answer)
    db.session.flush()
    return checkin, answer


def _alerts(db, patient, reason=None):
    query = select(Alert).where(Alert.patient_id == patient.id, Alert.source == "adherence")
    if reason:
        query = query.where(Alert.reason_code == reason)
    return list(db.session.scalars(query))


def test_nightly_job_stores_snapshots_and_raises_each_finding_once(circuit, db):
    today = utcnow().date()
    pharmacy = circuit.community_pharmacist.organisation
    imatinib = factories.create_patient(circuit.site, drug_inn="imatinib", start=today - timedelta(days=100),
                                        care_team=[circuit.nurse, circuit.community_pharmacist])
    for k in range(3):  # 30 days each: covered to day 89; the 90-day window starts on day 11
        _dispense(db, imatinib, imatinib_start(db, imatinib) + timedelta(days=30 * k), 30, 30, "1000 mg", pharmacy)
    start = circuit.patient.care_team[0].start_date
    _dispense(db, circuit.patient, start, 56, 14, org=pharmacy)  # one cycle, nothing since
    db.session.commit()

    result = recompute_adherence()
    assert result["patients"] == 4 and result["snapshots"] == 12 and result["batches"] >= 1
    watch = _alerts(db, imatinib)
    assert [(a.reason_code, a.severity) for a in watch] == [(PDC_WATCH, "yellow")]
    assert "88%" in watch[0].summary  # 79 covered of 90 needed days
    low = _alerts(db, circuit.patient)
    assert [(a.reason_code, a.severity) for a in low] == [(PDC_LOW, "orange")]
    snap = db.session.scalar(select(AdherenceSnapshot).where(
        AdherenceSnapshot.patient_id == circuit.patient.id, AdherenceSnapshot.window == "start"))
    # Days 0..30 of a 14/7 cycle: 14 + 10 needed on-days, the first 14 covered.
    assert (snap.needed_days, snap.covered_days) == (24, 14)
    assert snap.pdc == 14 / 24

    # Rerun the same day: snapshots updated in place, no second alert.
    result = recompute_adherence()
    assert db.session.scalar(select(func.count()).select_from(AdherenceSnapshot)) == 12
    assert len(_alerts(db, circuit.patient)) == 1 and result["alerts"] == 0

    # Resolved: not raised again during the cool-down, raised again after it if still true.
    triage.resolve(low[0], actor=circuit.nurse, note="Called: restarting")
    db.session.commit()
    recompute_adherence()
    assert len(_alerts(db, circuit.patient)) == 1
    set_clock(utcnow() + timedelta(days=Settings().alert_cooldown_days + 1))
    recompute_adherence()
    assert len(_alerts(db, circuit.patient, PDC_LOW)) == 2
    assert db.session.scalar(select(func.count()).select_from(AdherenceSnapshot)) == 24


def imatinib_start(db, patient):
    return db.session.scalar(select(Prescription.start_date).where(Prescription.patient_id == patient.id))


def test_job_leaves_paused_patients_alone(circuit, db):
    circuit.patient_no_team.status = "paused"
    db.session.commit()
    result = recompute_adherence()
    assert result["patients"] == 2
    assert db.session.scalar(select(func.count()).select_from(AdherenceSnapshot).where(
        AdherenceSnapshot.patient_id == circuit.patient_no_team.id)) == 0


def test_a_doses_missed_answer_recomputes_the_patient(circuit, db):
    now = utcnow()
    p = circuit.patient
    _answer(db, p, now - timedelta(days=7), "doses_missed", 0)
    checkin, answer = _answer(db, p, now, "doses_missed", 3)
    answer_recorded.send(answer, checkin=checkin)
    db.session.commit()
    snap = db.session.scalar(select(AdherenceSnapshot).where(
        AdherenceSnapshot.patient_id == p.id, AdherenceSnapshot.window == "30"))
    assert snap is not None and snap.computed_on == now.date()
    # Capecitabine, 2 intakes on on-days: the first answer covers the week before it, the
    # second the days since the first.
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == p.id))
    course = build_course([RxSpec(rx.start_date, None, 14, 7, 2, 2.0)])
    expected = course.intakes((now - timedelta(days=14)).date(), now.date() - timedelta(days=1))
    assert snap.self_report == (1 - 3 / expected if expected else None)


def test_dose_in_break_is_counted_but_left_to_the_checkin_engine(circuit, db):
    p = circuit.patient
    _answer(db, p, utcnow() - timedelta(days=2), "dose_in_break", True)
    db.session.commit()
    from app.adherence.services import recompute_patient

    result = recompute_patient(p.id)
    assert result.doses_in_break == {"30": 1, "90": 1, "start": 1}
    assert _alerts(db, p) == []


def test_bulk_self_report_matches_the_python_reference(circuit, db):
    rng = random.Random(7)
    today = utcnow().date()
    patients = [circuit.patient, circuit.patient_no_team, circuit.other_patient]
    answers = {}
    for p in patients:
        days = sorted(rng.sample(range(1, 29), 6))
        answers[p.id] = []
        for d in days:
            when = _noon(today - timedelta(days=d)) - timedelta(hours=rng.randint(0, 11))
            n = rng.randint(0, 5)
            _answer(db, p, when, "doses_missed", n)
            answers[p.id].append((when.date(), n))
        _answer(db, p, _noon(today - timedelta(days=3)), "dose_in_break", False)  # not a missed dose
    db.session.commit()
    inputs = queries.load_inputs([p.id for p in patients], today)
    for p in patients:
        got = compute.evaluate(inputs[p.id], today, Settings())
        rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == p.id))
        course = build_course([RxSpec(rx.start_date, rx.end_date, rx.days_on, rx.days_off, rx.frequency_per_day, 1.0)])
        for window, start in (("30", today - timedelta(days=29)), ("90", today - timedelta(days=89)),
                              ("start", date.min)):
            assert got.self_reports[window] == measures.self_report([course], answers[p.id], start, today), window


def test_course_phases_match_the_checkin_engine(circuit, db):
    """The adherence course and the questionnaire agree on which days are on-days."""
    start = date(2024, 1, 1)
    rx = Prescription(start_date=start, days_on=14, days_off=7, frequency_per_day=2, dose="1000 mg")
    kinds = [(10, "interruption"), (17, "resumption"), (40, "dose_change"), (55, "stop"), (60, "resumption")]
    rx.events = [PrescriptionEvent(kind=k, effective_date=start + timedelta(days=n), reason="x") for n, k in kinds]
    course = build_course([RxSpec(start, None, 14, 7, 2, 4.0, tuple(
        RxEvent(e.effective_date, e.kind, 3.0 if e.kind == "dose_change" else None) for e in rx.events))])
    for n in range(120):
        d = start + timedelta(days=n)
        seg = course.segment_at(d)
        on = seg is not None and seg.needed and seg.on_days(d, d) == 1
        assert on == (prescription_phase(rx, d) == "on"), d


def test_only_roles_that_may_see_the_patient_get_the_section(circuit, db):
    from app.adherence.panel import patient_panel

    today = utcnow().date()
    assert patient_panel(circuit.patient.id, circuit.other_pharmacist, today) is None
    assert patient_panel(circuit.patient.id, circuit.community_pharmacist, today).can_dispense
    gp_panel = patient_panel(circuit.patient.id, circuit.gp, today)
    assert gp_panel.can_report and not gp_panel.can_dispense
    assert not patient_panel(circuit.patient.id, circuit.oncologist, today).can_report


def test_the_nightly_job_runs_from_the_command_line(app, circuit, db):
    from tests.jobs_for_tests import clear_scheduler_state

    clear_scheduler_state()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "recompute-adherence"])
    assert result.exit_code == 0, result.output
    assert "recompute-adherence: ok" in result.output and '"patients": 3' in result.output
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AdherenceSnapshot)) == 9


def test_job_leaves_alone_a_patient_recomputed_after_its_read(circuit, db, monkeypatch):
    """A dispensing committed while the job computes: the job must not overwrite the fresher
    snapshot written by that dispensing's own recompute."""
    from app.adherence import tasks
    from app.adherence.services import recompute_patient

    p = circuit.patient
    original = tasks.compute_all

    def compute_then_someone_dispenses(as_of, cfg):
        result = original(as_of, cfg)
        _dispense(db, p, utcnow().date(), 56, 14, org=circuit.community_pharmacist.organisation)
        recompute_patient(p.id)
        db.session.commit()
        return result

    monkeypatch.setattr(tasks, "compute_all", compute_then_someone_dispenses)
    result = recompute_adherence()
    assert result["skipped"] == 1 and result["patients"] == 2
    snap = db.session.scalar(select(AdherenceSnapshot).where(
        AdherenceSnapshot.patient_id == p.id, AdherenceSnapshot.window == "30"))
    assert snap.pdc == 1.0  # the dispensing's recompute, not the job's read (no dispensing: None)
