"""Statements and indicators pages: scope per role, CSV export, indicator numbers, interviews paid."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

from app.adherence.models import AdherenceSnapshot
from app.community.models import PharmacistInterview
from app.core.time import set_clock
from app.pathways.checkins.models import CheckIn
from app.pathways.models import Enrolment
from app.reports.indicators import compute_indicators
from app.reports.ledger import build_ledger
from app.reports.models import LedgerEntry, Tariff
from app.triage.models import Alert, AlertAction

NOW = datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc)  # a Wednesday; this week starts Monday 16th


def _seed(db, circuit):
    for code in ("seq_S2_month", "seq_S3_month"):
        db.session.add(Tariff(code=code, recipient="site", amount_cents=2500, from_month=1,
                              valid_from=date(2020, 1, 1), note=""))
    for e in db.session.query(Enrolment):
        e.started_on = e.sequence_started_on = date(2026, 1, 15)
    db.session.commit()
    build_ledger("2026-02")  # circuit patients: LYN x2 (S2), TRS x1 (S2): month 2, EUR 25 each
    db.session.commit()


def _total(html: str) -> str:
    """The statement total's amount, whatever the page's language ("EUR 50.00" / "50.00 EUR")."""
    import re

    paragraph = html.split('id="statement-total">', 1)[1].split("</p>", 1)[0]
    return re.search(r"\d+\.\d\d", paragraph).group(0)


def test_staff_see_their_site_admins_all(db, circuit, login):
    _seed(db, circuit)
    nurse = login(circuit.nurse)
    page = nurse.get("/reports/statements?month=2026-02").get_data(as_text=True)
    assert _total(page) == "50.00" and circuit.site.name in page and circuit.other_site.name not in page
    assert nurse.get("/reports/statements?month=2026-02&site=TRS").status_code == 200  # ignored: own site
    admin = login(circuit.admin)
    assert _total(admin.get("/reports/statements?month=2026-02").get_data(as_text=True)) == "75.00"
    assert _total(admin.get("/reports/statements?month=2026-02&site=TRS").get_data(as_text=True)) == "25.00"
    for role in ("gp", "community_pharmacist", "community_nurse"):
        client = login(circuit.role(role))
        assert client.get("/reports/statements").status_code == 403
        assert client.get("/reports/indicators").status_code == 403
    assert nurse.get("/admin/tariffs").status_code == 403
    assert nurse.get("/reports/statements?month=2026-13").status_code == 400


def test_statement_csv_download(db, circuit, login):
    _seed(db, circuit)
    resp = login(circuit.oncologist).get("/reports/statements?month=2026-02&format=csv")
    assert resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="statements-2026-02.csv"'
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["site"], r["activity"], r["entries"], r["amount_eur"]) for r in rows] == [
        ("LYN", "seq_S2_month", "2", "50.00")]


def test_admin_adds_a_tariff_version(db, circuit, login, csrf_of):
    admin = login(circuit.admin)
    token = csrf_of(admin.get("/admin/tariffs").get_data(as_text=True))
    resp = admin.post("/admin/tariffs", data={
        "csrf_token": token, "code": "seq_S2_month", "recipient": "site", "amount": "30.00", "from_month": "1",
        "valid_from": "2026-01-01", "valid_to": "", "note": "reviewed"})
    assert resp.status_code == 302
    assert db.session.query(Tariff).one().amount_cents == 3000


def _checkin(patient, when, status, n):
    return CheckIn(patient_id=patient.id, period_key=f"w{n}", sequence="S2", scheduled_at=when,
                   closes_at=when + timedelta(days=2), channel="sms", status=status)


def _alert(patient, created, severity, ack_minutes=None):
    return Alert(patient_id=patient.id, site_id=patient.site_id, severity=severity, source="checkin",
                 reason_code="x", summary="x", due_at=created, created_at=created,
                 acknowledged_at=created + timedelta(minutes=ack_minutes) if ack_minutes is not None else None,
                 status="acknowledged" if ack_minutes is not None else "open")


def test_indicators_numbers(db, circuit):
    p, q, other = circuit.patient, circuit.patient_no_team, circuit.other_patient
    this_monday = datetime(2026, 3, 16, 10, 0, tzinfo=timezone.utc)
    last_week = this_monday - timedelta(weeks=1)
    db.session.add_all([
        _checkin(p, last_week, "completed", 1), _checkin(q, last_week, "partial", 1),
        _checkin(p, last_week + timedelta(days=1), "no_response", 2),
        _checkin(q, last_week + timedelta(days=2), "cancelled", 2),  # not due
        _checkin(p, this_monday, "completed", 3),
        _checkin(q, this_monday + timedelta(days=3), "scheduled", 3),  # after now: not due yet
        _checkin(other, this_monday, "no_response", 1),  # other site
    ])
    a1 = _alert(p, last_week, "red", 10)
    db.session.add_all([a1, _alert(q, last_week, "red", 30), _alert(p, this_monday, "orange", 5),
                        _alert(q, this_monday, "yellow"), _alert(other, this_monday, "red", 1)])
    db.session.flush()
    db.session.add(AlertAction(alert_id=a1.id, kind="referred", at=last_week))
    q.status = "hospitalised"
    db.session.add_all([
        AdherenceSnapshot(patient_id=p.id, computed_on=date(2026, 3, 1), window="90", pdc=0.95),
        AdherenceSnapshot(patient_id=p.id, computed_on=date(2026, 3, 17), window="90", pdc=0.85),
        AdherenceSnapshot(patient_id=q.id, computed_on=date(2026, 3, 17), window="90", pdc=0.5),
        AdherenceSnapshot(patient_id=other.id, computed_on=date(2026, 3, 17), window="90", pdc=0.99),
    ])
    db.session.commit()
    ind = compute_indicators([circuit.site.id], NOW)
    assert [(w.start, w.due, w.answered) for w in ind.weeks[-2:]] == [
        (date(2026, 3, 9), 3, 2), (date(2026, 3, 16), 1, 1)]
    assert sum(w.due for w in ind.weeks[:-2]) == 0
    assert ind.included == [("LYN", "S2", 2)]
    assert (ind.alerts, ind.alerts_per_100) == (4, 100.0)  # 4 alerts for 4 due check-ins
    assert ind.median_ack_minutes == {"red": 20.0, "orange": 5.0, "yellow": None, "info": None}
    assert (ind.referred, ind.hospitalised) == (1, 1)
    assert ind.adherence == {"lt80": 1, "80to90": 1, "ge90": 0, "none": 0}
    everyone = compute_indicators(None, NOW)
    assert (everyone.alerts, everyone.due, everyone.adherence["ge90"]) == (5, 5, 1)
    assert everyone.included == [("LYN", "S2", 2), ("TRS", "S2", 1)]


def test_indicators_page_and_csv(db, circuit, login):
    set_clock(NOW)
    client = login(circuit.nurse)
    page = client.get("/reports/indicators").get_data(as_text=True)
    assert 'id="completion-data"' in page and "indicators.js" in page
    resp = client.get("/reports/indicators?format=csv")
    assert resp.mimetype == "text/csv" and resp.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["indicator", "key", "value"]
    assert ["patients_included", "LYN/S2", "2"] in rows and not any("TRS" in r[1] for r in rows)


def test_interviews_paid_once_per_year(db, circuit):
    db.session.add_all([
        Tariff(code="interview_year1", recipient="community_pharmacist", amount_cents=8000,
               valid_from=date(2020, 1, 1), note=""),
        Tariff(code="interview_later_year", recipient="community_pharmacist", amount_cents=2000,
               valid_from=date(2020, 1, 1), note=""),
    ])
    ph, p = circuit.community_pharmacist, circuit.patient

    def interview(day, kind):
        return PharmacistInterview(patient_id=p.id, pharmacist_id=ph.id, kind=kind, held_on=day, answers={},
                                   next_due_kind="adherence", next_due_on=day + timedelta(days=30))
    first = interview(date(2025, 3, 3), "initial")
    db.session.add_all([first, interview(date(2025, 3, 20), "adherence"),
                        interview(date(2026, 3, 10), "adherence"), interview(date(2026, 3, 25), "adherence")])
    db.session.commit()
    for month in ("2025-03", "2026-03"):
        build_ledger(month)
    entries = sorted((e.period, e.activity, e.amount_cents, e.professional_id)
                     for e in db.session.query(LedgerEntry).filter(LedgerEntry.activity.like("interview%")))
    assert entries == [("2025-03", "interview_year1", 8000, ph.id), ("2026-03", "interview_later_year", 2000, ph.id)]
