"""Administration pages: organisations, sites, accounts and the audit log, through the test client."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select

from app.care.models import Organisation, Professional, Site
from app.core.audit import AuditEvent
from app.core.roles import Role
from tests import factories
from tests.factories import PASSWORD

NEW_PASSWORD = "a much longer passphrase 42"


def _count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _actions(db, action: str) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _submit(client, csrf_of, url: str, data: dict):
    """GET the form (for its CSRF token) and POST ``data`` to it."""
    token = csrf_of(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def _signed_in(app, user, csrf_of, password: str = PASSWORD):
    """A second, independent browser signed in as ``user``."""
    other = app.test_client()
    token = csrf_of(other.get("/login").get_data(as_text=True))
    resp = other.post("/login", data={"email": user.email, "password": password, "csrf_token": token})
    assert resp.status_code == 302
    return other


def _row_ids(resp) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', resp.get_data(as_text=True))]


def _sent_to_login(client) -> bool:
    resp = client.get("/")
    return resp.status_code == 302 and "/login" in resp.headers["Location"]


def _field_errors(resp) -> set[str]:
    return set(re.findall(r'data-field="([^"]+)"', resp.get_data(as_text=True)))


# --- index and organisations -----------------------------------------------------------------

def test_index_links_and_counts(circuit, login):
    html = login(circuit.admin).get("/admin/").get_data(as_text=True)
    assert 'data-count="sites">2<' in html
    assert 'data-count="active_accounts">10<' in html
    for endpoint in ("/admin/organisations", "/admin/sites", "/admin/accounts", "/admin/audit"):
        assert f'href="{endpoint}"' in html


def test_create_and_edit_organisation(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    resp = _submit(client, csrf_of, "/admin/organisations/new", {
        "name": "Pharmacie du Parc", "kind": "community_pharmacy", "finess": "690 001 234", "city": "Lyon",
        "phone": "04 78 12 34 56", "active": "y"})
    assert resp.status_code == 302
    org = db.session.scalar(select(Organisation).where(Organisation.name == "Pharmacie du Parc"))
    assert (org.kind, org.finess, org.phone, org.active) == ("community_pharmacy", "690001234", "+33478123456", True)
    resp = _submit(client, csrf_of, f"/admin/organisations/{org.id}/edit", {
        "name": "Pharmacie du Grand Parc", "kind": "community_pharmacy", "finess": "", "city": "Lyon", "phone": ""})
    assert resp.status_code == 302
    db.session.refresh(org)
    assert (org.name, org.finess, org.phone, org.active) == ("Pharmacie du Grand Parc", None, None, False)
    created, = _actions(db, "organisation_create")
    updated, = _actions(db, "organisation_update")
    assert created.object_id == updated.object_id == str(org.id)
    assert created.actor_id == updated.actor_id == circuit.admin.id
    assert set(updated.detail["fields"]) == {"name", "finess", "phone", "active"}
    html = client.get("/admin/organisations?kind=community_pharmacy").get_data(as_text=True)
    assert "Pharmacie du Grand Parc" in html and circuit.site.organisation.name not in html


def test_organisation_errors_are_inline_and_nothing_is_written(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    circuit.site.organisation.finess = "690000001"
    db.session.commit()
    before = _count(db, Organisation)
    for finess, phone in (("12345", "0478"), ("690000001", "+33 4 78 12 34 56 99")):
        resp = _submit(client, csrf_of, "/admin/organisations/new", {
            "name": "X", "kind": "hospital", "finess": finess, "phone": phone})
        assert resp.status_code == 422
        assert {"finess", "phone"} <= _field_errors(resp)
    assert _count(db, Organisation) == before
    assert not _actions(db, "organisation_create")


def test_kind_cannot_change_under_incompatible_accounts(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    pharmacy = circuit.community_pharmacist.organisation
    resp = _submit(client, csrf_of, f"/admin/organisations/{pharmacy.id}/edit", {
        "name": pharmacy.name, "kind": "gp_practice", "active": "y"})
    assert resp.status_code == 422 and _field_errors(resp) == {"kind"}
    hospital = circuit.site.organisation
    resp = _submit(client, csrf_of, f"/admin/organisations/{hospital.id}/edit", {
        "name": hospital.name, "kind": "nursing_practice", "active": "y"})
    assert resp.status_code == 422 and _field_errors(resp) == {"kind"}
    db.session.expire_all()
    assert (pharmacy.kind, hospital.kind) == ("community_pharmacy", "hospital")
    empty = factories.create_organisation("gp_practice")
    db.session.commit()
    resp = _submit(client, csrf_of, f"/admin/organisations/{empty.id}/edit", {
        "name": empty.name, "kind": "nursing_practice", "active": "y"})
    assert resp.status_code == 302
    db.session.refresh(empty)
    assert empty.kind == "nursing_practice"


# --- sites -----------------------------------------------------------------------------------

def _site_data(org_id, **changes):
    data = {"organisation_id": str(org_id), "code": "nts", "name": "Nantes", "timezone": "Europe/Paris",
            "hospital_phone": "02 40 00 00 01", "s3_followup_weeks": "4", "active": "y"}
    data.update(changes)
    return data


def test_create_and_edit_site(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    org_id = circuit.site.organisation_id
    assert _submit(client, csrf_of, "/admin/sites/new", _site_data(org_id)).status_code == 302
    site = db.session.scalar(select(Site).where(Site.code == "NTS"))
    assert (site.organisation_id, site.hospital_phone, site.s3_followup_weeks) == (org_id, "+33240000001", 4)
    resp = _submit(client, csrf_of, f"/admin/sites/{site.id}/edit",
                   _site_data(org_id, name="Nantes Nord", timezone="Indian/Reunion", s3_followup_weeks="2"))
    assert resp.status_code == 302
    db.session.refresh(site)
    assert (site.name, site.timezone, site.s3_followup_weeks) == ("Nantes Nord", "Indian/Reunion", 2)
    assert _actions(db, "site_create")[0].object_id == str(site.id)
    assert set(_actions(db, "site_update")[0].detail["fields"]) == {"name", "timezone", "s3_followup_weeks"}
    assert "NTS" in client.get("/admin/sites").get_data(as_text=True)


@pytest.mark.parametrize("changes, fields", [
    ({"code": "lyn"}, {"code"}),  # LYN exists: codes are compared upper-case
    ({"timezone": "Europe/Lyon"}, {"timezone"}),
    ({"hospital_phone": "12"}, {"hospital_phone"}),
    ({"s3_followup_weeks": "3"}, {"s3_followup_weeks"}),
    ({"organisation_id": "pharmacy"}, {"organisation_id"}),
])
def test_site_errors_are_inline_and_nothing_is_written(circuit, login, csrf_of, db, changes, fields):
    client = login(circuit.admin)
    if changes.get("organisation_id") == "pharmacy":
        changes = {"organisation_id": str(circuit.community_pharmacist.organisation_id)}
    resp = _submit(client, csrf_of, "/admin/sites/new", _site_data(circuit.site.organisation_id, **changes))
    assert resp.status_code == 422
    assert _field_errors(resp) == fields
    assert _count(db, Site) == 2 and not _actions(db, "site_create")


# --- accounts --------------------------------------------------------------------------------

def _account_data(circuit, **changes):
    data = {"email": "Claire.Martin@Example.FR", "first_name": "Claire", "last_name": "Martin",
            "role": "coordinating_nurse", "organisation_id": str(circuit.site.organisation_id),
            "site_id": str(circuit.site.id), "phone": "06 12 34 56 77", "rpps": "", "language": "fr",
            "active": "y", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    data.update(changes)
    return data


def test_create_account_then_the_person_signs_in(app, circuit, login, csrf_of, db):
    client = login(circuit.admin)
    resp = _submit(client, csrf_of, "/admin/accounts/new", _account_data(circuit))
    assert resp.status_code == 302
    prof = db.session.scalar(select(Professional).where(Professional.email == "claire.martin@example.fr"))
    assert (prof.role, prof.site_id, prof.organisation_id, prof.phone) == (
        "coordinating_nurse", circuit.site.id, circuit.site.organisation_id, "+33612345677")
    assert NEW_PASSWORD not in prof.password_hash
    event_, = _actions(db, "account_create")
    assert event_.object_id == str(prof.id) and event_.actor_id == circuit.admin.id
    assert NEW_PASSWORD not in str(event_.detail)
    assert not _sent_to_login(_signed_in(app, prof, csrf_of, NEW_PASSWORD))


@pytest.mark.parametrize("case, fields", [
    ("duplicate_email_other_case", {"email"}),
    ("hospital_role_without_site", {"site_id"}),
    ("site_of_another_organisation", {"site_id"}),
    ("community_role_with_site", {"site_id"}),
    ("organisation_of_wrong_kind", {"organisation_id"}),
    ("bad_phone", {"phone"}),
    ("weak_password", {"password"}),
])
def test_account_errors_are_inline_and_nothing_is_written(circuit, login, csrf_of, db, case, fields):
    changes = {
        "duplicate_email_other_case": {"email": circuit.nurse.email.upper()},
        "hospital_role_without_site": {"site_id": ""},
        "site_of_another_organisation": {"site_id": str(circuit.other_site.id)},
        "community_role_with_site": {"role": "gp", "organisation_id": str(circuit.gp.organisation_id)},
        "organisation_of_wrong_kind": {"role": "gp", "site_id": ""},
        "bad_phone": {"phone": "06 12"},
        "weak_password": {"password": "short", "confirm": "short"},
    }[case]
    client = login(circuit.admin)
    before = _count(db, Professional)
    resp = _submit(client, csrf_of, "/admin/accounts/new", _account_data(circuit, **changes))
    assert resp.status_code == 422
    assert _field_errors(resp) == fields
    assert _count(db, Professional) == before and not _actions(db, "account_create")


def test_account_list_search_and_filters(circuit, login):
    client = login(circuit.admin)

    def listed(query: str) -> set[int]:
        return set(_row_ids(client.get("/admin/accounts" + query)))

    assert listed(f"?q={circuit.gp.email.upper()}") == {circuit.gp.id}
    assert listed("?role=oncologist") == {circuit.oncologist.id, circuit.other_oncologist.id}
    assert listed(f"?site_id={circuit.other_site.id}") == {circuit.other_nurse.id, circuit.other_oncologist.id}
    assert listed("?active=0") == set()
    assert len(listed("?page=-3&site_id=abc&role=nobody")) == 10  # garbage filters are ignored


def test_edit_account_change_of_site_ends_sessions_but_a_phone_change_does_not(app, circuit, login, csrf_of, db):
    nurse = circuit.nurse
    nurse_browser = _signed_in(app, nurse, csrf_of)
    client = login(circuit.admin)
    data = _account_data(circuit, email=nurse.email, first_name=nurse.first_name, last_name=nurse.last_name,
                         phone="+33612345655")
    resp = _submit(client, csrf_of, f"/admin/accounts/{nurse.id}/edit", data)
    assert resp.status_code == 302
    assert not _sent_to_login(nurse_browser)
    data.update(organisation_id=str(circuit.other_site.organisation_id), site_id=str(circuit.other_site.id))
    assert _submit(client, csrf_of, f"/admin/accounts/{nurse.id}/edit", data).status_code == 302
    db.session.refresh(nurse)
    assert (nurse.site_id, nurse.phone) == (circuit.other_site.id, "+33612345655")
    assert _sent_to_login(nurse_browser)
    first, second = sorted(_actions(db, "account_update"), key=lambda e: e.id)
    assert first.detail == {"fields": ["phone"], "sessions_ended": False}
    assert second.detail == {"fields": ["organisation_id", "site_id"], "sessions_ended": True}


def test_edit_account_checks_the_same_rules(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    gp = circuit.gp
    resp = _submit(client, csrf_of, f"/admin/accounts/{gp.id}/edit", {
        "email": circuit.nurse.email.title(), "first_name": "A", "last_name": "B", "role": "gp",
        "organisation_id": str(gp.organisation_id), "site_id": str(circuit.site.id), "language": "en",
        "phone": "", "active": "y"})
    assert resp.status_code == 422 and _field_errors(resp) == {"email", "site_id"}
    db.session.expire_all()
    assert gp.first_name == "Test" and gp.site_id is None


def test_deactivation_ends_the_session_and_reactivation_restores_access(app, circuit, login, csrf_of, db):
    pharmacist = circuit.community_pharmacist
    browser = _signed_in(app, pharmacist, csrf_of)
    assert not _sent_to_login(browser)
    client = login(circuit.admin)
    token = csrf_of(client.get("/admin/accounts").get_data(as_text=True))
    assert client.post(f"/admin/accounts/{pharmacist.id}/deactivate", data={"csrf_token": token}).status_code == 302
    db.session.refresh(pharmacist)
    assert pharmacist.active is False
    assert _sent_to_login(browser)
    assert [e.object_id for e in _actions(db, "account_deactivate")] == [str(pharmacist.id)]
    client.post(f"/admin/accounts/{pharmacist.id}/reactivate", data={"csrf_token": token})
    db.session.refresh(pharmacist)
    assert pharmacist.active is True and len(_actions(db, "account_reactivate")) == 1
    assert not _sent_to_login(_signed_in(app, pharmacist, csrf_of))


def test_password_reset_ends_sessions_and_sets_the_new_password(app, circuit, login, csrf_of, db):
    gp = circuit.gp
    browser = _signed_in(app, gp, csrf_of)
    client = login(circuit.admin)
    url = f"/admin/accounts/{gp.id}/password"
    resp = _submit(client, csrf_of, url, {"password": "aaaaaaaaaaaaaaaa", "confirm": "aaaaaaaaaaaaaaaa"})
    assert resp.status_code == 422 and _field_errors(resp) == {"password"}
    assert not _sent_to_login(browser)
    resp = _submit(client, csrf_of, url, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert resp.status_code == 302
    assert _sent_to_login(browser)
    assert len(_actions(db, "password_reset")) == 1
    assert not _sent_to_login(_signed_in(app, gp, csrf_of, NEW_PASSWORD))


def test_admin_cannot_deactivate_or_demote_self(circuit, login, csrf_of, db):
    admin = circuit.admin
    client = login(admin)
    token = csrf_of(client.get("/admin/accounts").get_data(as_text=True))
    client.post(f"/admin/accounts/{admin.id}/deactivate", data={"csrf_token": token})
    resp = _submit(client, csrf_of, f"/admin/accounts/{admin.id}/edit", {
        "email": admin.email, "first_name": "A", "last_name": "B", "role": "oncologist",
        "organisation_id": str(circuit.site.organisation_id), "site_id": str(circuit.site.id),
        "language": "fr", "phone": ""})
    assert resp.status_code == 422 and {"active", "role"} <= _field_errors(resp)
    db.session.refresh(admin)
    assert admin.active is True and admin.role == "admin"
    assert client.get("/admin/").status_code == 200
    assert not _actions(db, "account_deactivate") and not _actions(db, "account_update")


# --- audit log -------------------------------------------------------------------------------

def _audit_rows(db, circuit):
    """Six known rows; returns their ids by name."""
    rows = {
        "nurse_read": AuditEvent(actor_id=circuit.nurse.id, actor_label=circuit.nurse.email,
                                 patient_id=circuit.patient.id, action="read", object_type="Patient",
                                 object_id=str(circuit.patient.id), ip="10.0.0.1",
                                 at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC)),
        "nurse_update": AuditEvent(actor_id=circuit.nurse.id, actor_label=circuit.nurse.email,
                                   patient_id=circuit.patient.id, action="update", detail={"fields": ["phone"]},
                                   at=datetime(2025, 3, 2, 8, 0, tzinfo=UTC)),
        "gp_read": AuditEvent(actor_id=circuit.gp.id, actor_label=circuit.gp.email,
                              patient_id=circuit.patient.id, action="read",
                              at=datetime(2025, 3, 5, 9, 0, tzinfo=UTC)),
        "onco_read_other": AuditEvent(actor_id=circuit.other_oncologist.id,
                                      actor_label=circuit.other_oncologist.email,
                                      patient_id=circuit.other_patient.id, action="read",
                                      at=datetime(2025, 3, 2, 10, 0, tzinfo=UTC)),
        "nurse_list": AuditEvent(actor_id=circuit.nurse.id, actor_label=circuit.nurse.email, action="list",
                                 at=datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
        "system": AuditEvent(actor_label="system", action="purge", at=datetime(2025, 3, 4, tzinfo=UTC)),
    }
    db.session.add_all(rows.values())
    db.session.commit()
    return {name: row.id for name, row in rows.items()}


def _listed(client, query: str) -> list[int]:
    resp = client.get("/admin/audit" + query)
    assert resp.status_code == 200
    return _row_ids(resp)


def test_audit_log_filters(circuit, login, db):
    ids = _audit_rows(db, circuit)
    client = login(circuit.admin)
    assert _listed(client, f"?patient_id={circuit.other_patient.id}") == [ids["onco_read_other"]]
    assert _listed(client, f"?actor={circuit.nurse.id}") == [ids["nurse_list"], ids["nurse_update"],
                                                             ids["nurse_read"]]
    assert _listed(client, f"?actor={circuit.nurse.email.upper()}&action=read") == [ids["nurse_read"]]
    assert _listed(client, "?action=purge") == [ids["system"]]
    # Dates are local (Europe/Paris): 23:30 UTC on 1 March is already 2 March in Paris.
    assert _listed(client, "?date_from=2025-03-02&date_to=2025-03-02") == [
        ids["onco_read_other"], ids["nurse_update"], ids["nurse_read"]]
    resp = client.get("/admin/audit?actor=nobody@example.org&date_from=2025-03-05&date_to=2025-03-01")
    assert _field_errors(resp) == {"actor", "date_to"}


def test_reading_a_patients_trail_is_recorded_and_changes_nothing(circuit, login, db):
    ids = _audit_rows(db, circuit)
    client = login(circuit.admin)
    before = {e.id: (e.action, e.patient_id, e.detail) for e in db.session.scalars(select(AuditEvent))}
    html = client.get(f"/admin/audit?patient_id={circuit.patient.id}").get_data(as_text=True)
    assert "<form method=\"post\" action=\"/admin" not in html
    after = {e.id: (e.action, e.patient_id, e.detail) for e in db.session.scalars(select(AuditEvent))}
    new = {k: v for k, v in after.items() if k not in before}
    assert {k: v for k, v in after.items() if k in before} == before
    assert [(action, patient) for action, patient, _ in new.values()] == [("audit_read", circuit.patient.id)]
    audit_read, = _actions(db, "audit_read")
    assert audit_read.actor_id == circuit.admin.id and audit_read.detail["results"] == 3
    # The next reader of this trail sees that the admin looked.
    assert _listed(client, f"?patient_id={circuit.patient.id}")[0] == audit_read.id
    assert ids["gp_read"] in _listed(client, f"?patient_id={circuit.patient.id}")
    _listed(client, "?action=read")
    assert len(_actions(db, "audit_read")) == 3  # no patient filter, no trace


def test_audit_log_pages_newest_first_with_constant_query_count(app, circuit, login, db, monkeypatch):
    monkeypatch.setitem(app.config, "AUDIT_PAGE_SIZE", 3)
    for n in range(7):
        db.session.add(AuditEvent(actor_label="system", action="tick", object_id=str(n)))
    db.session.commit()
    ids = db.session.scalars(select(AuditEvent.id).where(AuditEvent.action == "tick")
                             .order_by(AuditEvent.id.desc())).all()
    client = login(circuit.admin)
    assert _listed(client, "?action=tick") == ids[:3]
    assert _listed(client, f"?action=tick&before={ids[2]}") == ids[3:6]
    assert _listed(client, f"?action=tick&before={ids[5]}") == ids[6:]
    assert _listed(client, f"?action=tick&after={ids[6]}") == ids[3:6]
    html = client.get(f"/admin/audit?action=tick&before={ids[2]}").get_data(as_text=True)
    assert f"after={ids[3]}" in html and f"before={ids[5]}" in html

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get(f"/admin/audit?action=tick&before={ids[2]}")  # three rows
        small = len(statements)
        statements.clear()
        client.get(f"/admin/audit?action=tick&before={ids[5]}")  # one row
        assert len(statements) == small
        for n in range(30):
            db.session.add(AuditEvent(actor_label="system", action="tick", object_id=str(n)))
        db.session.commit()
        statements.clear()
        client.get(f"/admin/audit?action=tick&before={ids[2]}")
        assert len(statements) == small
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# --- access ----------------------------------------------------------------------------------

def _admin_urls(app, circuit) -> list[tuple[str, str]]:
    ids = {"org_id": circuit.site.organisation_id, "site_id": circuit.site.id, "prof_id": circuit.gp.id}
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        path = rule.rule
        for name, value in ids.items():
            path = path.replace(f"<int:{name}>", str(value))
        assert "<" not in path, path
        urls += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


@pytest.mark.parametrize("role", [r.value for r in Role if r != Role.ADMIN])
def test_every_admin_route_refuses_other_roles(app, circuit, login, csrf_of, db, role):
    urls = _admin_urls(app, circuit)
    assert len(urls) >= 20
    client = login(getattr(circuit, {"coordinating_nurse": "nurse"}.get(role, role)))
    token = csrf_of(client.get("/").get_data(as_text=True))
    for method, path in urls:
        resp = client.open(path, method=method, data={"csrf_token": token, "name": "x", "active": ""})
        assert resp.status_code == 403, (method, path)
    db.session.refresh(circuit.gp)
    assert circuit.gp.active is True
    assert len(_actions(db, "denied")) == len(urls)


def test_anonymous_visitors_are_sent_to_login(app, circuit, client):
    for method, path in _admin_urls(app, circuit):
        if method == "GET":
            resp = client.get(path)
            assert resp.status_code == 302 and "/login" in resp.headers["Location"], path
