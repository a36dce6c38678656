"""The nurse's pages through the Flask test client: dashboard, patient page, enrolment, edits."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from app.care.models import Patient
from app.core.audit import AuditEvent
from app.pathways.models import Enrolment, EnrolmentEvent, Prescription


def test_dashboard_lists_only_own_site_patients(circuit, login):
    client = login(circuit.nurse)
    html = client.get("/").get_data(as_text=True)
    assert "DURAND Marie" in html
    assert "LEFEVRE" in html
    assert "MOREAU" not in html


def test_dashboard_search_and_filters(circuit, login):
    client = login(circuit.nurse)
    html = client.get("/?q=dur").get_data(as_text=True)
    assert "DURAND" in html and "LEFEVRE" not in html
    html = client.get(f"/?q={circuit.patient_no_team.mrn}").get_data(as_text=True)
    assert "LEFEVRE" in html and "DURAND" not in html
    html = client.get("/?sequence=S3").get_data(as_text=True)
    assert "DURAND" not in html


def test_dashboard_survives_garbage_filters(circuit, login):
    client = login(circuit.nurse)
    for query in ("?page=-4", "?page=abc", "?drug_id=xyz", "?sequence=S9", "?q=%25%27%22", "?status=<script>"):
        assert client.get("/" + query).status_code == 200


def test_community_pharmacist_sees_only_care_team_patients(circuit, login):
    client = login(circuit.community_pharmacist)
    html = client.get("/").get_data(as_text=True)
    assert "DURAND" in html and "LEFEVRE" not in html
    assert client.get(f"/patients/{circuit.patient_no_team.id}").status_code == 404
    assert client.get(f"/patients/{circuit.patient.id}").status_code == 200


def _enrol_form(circuit, csrf, **changes):
    today = date.today()
    data = {
        "csrf_token": csrf, "last_name": "Bernard", "first_name": "Alain", "birth_date": "1950-06-01",
        "mrn": "LYN777", "ins": "", "phone": "06 12 34 56 78", "channel": "sms", "language": "fr",
        "checkin_weekday": "2", "checkin_hour": "10", "timezone": "Europe/Paris", "consent_given": "y",
        "consent_date": today.isoformat(), "pathway": "A", "sequence": "S1", "lead_team": "hospital",
        "drug_id": "", "dose": "2000 mg", "frequency_per_day": "", "days_on": "", "days_off": "",
        "start_date": today.isoformat(), "end_date": "", "prescriber_id": str(circuit.oncologist.id),
    }
    data.update(changes)
    return data


def test_enrol_creates_patient_enrolment_prescription_and_team_at_once(circuit, login, csrf_of, db):
    from tests.factories import drug

    client = login(circuit.nurse)
    csrf = csrf_of(client.get("/patients/new").get_data(as_text=True))
    resp = client.post("/patients/new", data=_enrol_form(circuit, csrf, drug_id=str(drug("capecitabine").id)))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    patient = db.session.scalar(select(Patient).where(Patient.mrn == "LYN777"))
    assert patient.phone == "+33612345678"
    assert patient.consent_recorded_by_id == circuit.nurse.id
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
    assert (rx.days_on, rx.days_off, rx.frequency_per_day) == (14, 7, 2)  # capecitabine defaults
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == patient.id))
    assert enrolment.sequence == "S1"
    assert {m.professional_id for m in patient.care_team} == {circuit.oncologist.id, circuit.nurse.id}


def test_enrol_errors_are_inline_and_nothing_is_written(circuit, login, csrf_of, db):
    from tests.factories import drug

    client = login(circuit.nurse)
    csrf = csrf_of(client.get("/patients/new").get_data(as_text=True))
    before = db.session.scalar(select(func.count()).select_from(Patient))
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    form = _enrol_form(circuit, csrf, phone="12", mrn=circuit.patient.mrn, consent_given="",
                       drug_id=str(drug("imatinib").id), end_date="2000-01-01")
    resp = client.post("/patients/new", data=form)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    for name in ("phone", "mrn", "consent_given", "end_date"):
        assert f'data-field="{name}"' in html, name
    assert db.session.scalar(select(func.count()).select_from(Patient)) == before
    form = _enrol_form(circuit, csrf, drug_id="99999", consent_date=tomorrow)
    html = client.post("/patients/new", data=form).get_data(as_text=True)
    assert 'data-field="drug_id"' in html and 'data-field="consent_date"' in html
    assert db.session.scalar(select(func.count()).select_from(Patient)) == before


def test_pages_are_french_by_default_and_english_on_request(circuit, login, csrf_of):
    client = login(circuit.nurse)
    html = client.get("/").get_data(as_text=True)
    assert "Inscrire un patient" in html
    client.post("/language/en", data={"csrf_token": csrf_of(html), "next": "/"})
    assert "Enrol a patient" in client.get("/").get_data(as_text=True)


def test_sequence_change_is_an_event_with_who_and_why(circuit, login, csrf_of, db):
    client = login(circuit.nurse)
    csrf = csrf_of(client.get(f"/patients/{circuit.patient.id}").get_data(as_text=True))
    resp = client.post(f"/patients/{circuit.patient.id}/enrolment", data={
        "csrf_token": csrf, "en-pathway": "A", "en-sequence": "S3", "en-lead_team": "community",
        "en-reason": "stable"})
    assert resp.status_code == 302
    # A nurse cannot move a patient to S3: only the referring doctor.
    assert db.session.scalar(select(Enrolment.sequence).where(Enrolment.patient_id == circuit.patient.id)) == "S2"
    client = login(circuit.oncologist)
    csrf = csrf_of(client.get(f"/patients/{circuit.patient.id}").get_data(as_text=True))
    client.post(f"/patients/{circuit.patient.id}/enrolment", data={
        "csrf_token": csrf, "en-pathway": "A", "en-sequence": "S3", "en-lead_team": "community",
        "en-reason": "stabilised, hand-over to community"})
    events = db.session.scalars(select(EnrolmentEvent).where(EnrolmentEvent.kind.in_(["sequence", "lead"]))).all()
    assert {(e.kind, e.from_value, e.to_value, e.actor_id) for e in events} == {
        ("sequence", "S2", "S3", circuit.oncologist.id), ("lead", "hospital", "community", circuit.oncologist.id)}
    assert all(e.reason == "stabilised, hand-over to community" for e in events)


def test_form_without_csrf_token_is_refused(circuit, login, db):
    client = login(circuit.nurse)
    resp = client.post(f"/patients/{circuit.patient.id}/edit", data={"last_name": "X"})
    assert resp.status_code == 400
    assert db.session.get(Patient, circuit.patient.id).last_name == "Durand"


def test_patient_pages_are_not_cached(circuit, login):
    client = login(circuit.nurse)
    resp = client.get(f"/patients/{circuit.patient.id}")
    assert resp.headers["Cache-Control"] == "no-store"
    assert AuditEvent.query.filter_by(action="read", patient_id=circuit.patient.id).count() == 1


def test_sequence_review_due_dates_follow_the_regimen_and_renewal(circuit, login, csrf_of, db):
    from datetime import date, timedelta

    from app.pathways.models import Enrolment, review_due

    assert review_due("S1", date(2026, 1, 1), 14, 7) == date(2026, 1, 22)    # one 21-day cycle
    assert review_due("S2", date(2026, 1, 1), 21, 7) == date(2026, 3, 26)    # three 28-day cycles
    assert review_due("S2", date(2026, 1, 1), 28, 0) == date(2026, 3, 26)    # continuous: 28-day cycles
    assert review_due("S3", date(2026, 1, 1), 14, 7) == date(2026, 7, 2)     # six months
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == circuit.patient.id))
    enrolment.review_due_on = date.today() - timedelta(days=1)
    db.session.commit()
    client = login(circuit.nurse)
    html = client.get("/?review=y").get_data(as_text=True)
    assert "DURAND" in html and "LEFEVRE" not in html
    csrf = csrf_of(client.get(f"/patients/{circuit.patient.id}").get_data(as_text=True))
    client.post(f"/patients/{circuit.patient.id}/enrolment", data={
        "csrf_token": csrf, "en-pathway": "A", "en-sequence": "S2", "en-lead_team": "hospital", "en-renew": "y",
        "en-reason": "three more cycles, still grade 1 hand-foot"})
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == circuit.patient.id))
    assert enrolment.sequence_started_on == date.today()
    assert enrolment.review_due_on == date.today() + timedelta(days=63)  # capecitabine 3 x 21 days
    kinds = [e.kind for e in db.session.scalars(select(EnrolmentEvent).where(
        EnrolmentEvent.enrolment_id == enrolment.id))]
    assert "renewal" in kinds
    assert "DURAND" not in client.get("/?review=y").get_data(as_text=True)


def test_care_team_adds_site_staff_from_the_list_and_community_professionals_by_email(circuit, login, csrf_of, db):
    from app.care.models import CareTeamMember

    client = login(circuit.nurse)
    page = client.get(f"/patients/{circuit.patient_no_team.id}").get_data(as_text=True)
    assert circuit.other_pharmacist.email not in page  # the directory is not listed in the page
    csrf = csrf_of(page)
    url = f"/patients/{circuit.patient_no_team.id}/care-team"
    client.post(url, data={"csrf_token": csrf, "ct-community_email": "nobody@nowhere.fr", "ct-start_date": "2026-01-05"})
    client.post(url, data={"csrf_token": csrf, "ct-community_email": circuit.community_pharmacist.email.upper(),
                           "ct-start_date": "2026-01-05"})
    client.post(url, data={"csrf_token": csrf, "ct-professional_id": str(circuit.hospital_pharmacist.id),
                           "ct-start_date": "2026-01-05"})
    members = {m.professional_id for m in db.session.scalars(
        select(CareTeamMember).where(CareTeamMember.patient_id == circuit.patient_no_team.id))}
    assert members == {circuit.oncologist.id, circuit.community_pharmacist.id, circuit.hospital_pharmacist.id}
