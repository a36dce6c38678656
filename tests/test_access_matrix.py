"""Walks every route as every role and checks allowed/denied against tests/access_matrix.py."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.core.audit import AuditEvent
from tests.access_matrix import ADMIN, ANON, EXEMPT, MATRIX, ROLES

DENIED = {401, 403, 404}


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = sorted(endpoints - set(MATRIX) - set(EXEMPT))
    assert missing == [], f"routes without an access rule in tests/access_matrix.py: {missing}"
    stale = sorted(set(MATRIX) - endpoints)
    assert stale == [], f"matrix rows for routes that no longer exist: {stale}"


def test_matrix_paths_match_their_endpoints(app):
    adapter = app.url_map.bind("localhost")
    for endpoint, route in MATRIX.items():
        path = re.sub(r"\{[a-z_]+\}", "1", route.path)
        matched, _ = adapter.match(path, method=route.method)
        assert matched == endpoint, f"{endpoint}: {route.method} {route.path} resolves to {matched}"


class Walker:
    """Logged-in clients per role and the ids the placeholders stand for."""

    def __init__(self, app, circuit, db):
        from app.auth.services import issue_api_token

        self.app = app
        self.circuit = circuit
        self.tokens = {}
        self.token_ids = {}
        for role in ROLES:
            if role == ANON:
                continue
            user = circuit.role(_attr(role))
            self.tokens[role] = issue_api_token(user, "matrix")
        db.session.commit()
        from app.auth.models import ApiToken

        for token in db.session.scalars(select(ApiToken)):
            self.token_ids[token.professional_id] = token.id
        self.ids = self._ids(db)
        self.clients = {}

    def _ids(self, db):
        c = self.circuit
        patient = c.patient
        ids = {
            "patient": patient.id,
            "member": next(m.id for m in patient.care_team if m.professional_id == c.gp.id),
            "rx": db.session.scalar(select(_rx_model().id).where(_rx_model().patient_id == patient.id)),
            "organisation": c.site.organisation_id,
            "site": c.site.id,
            "account": c.gp.id,
        }
        ids.update(extra_ids(db, c))
        return ids

    def client(self, role):
        if role in self.clients:
            return self.clients[role]
        client = self.app.test_client()
        if role != ANON:
            from tests.factories import PASSWORD

            user = self.circuit.role(_attr(role))
            html = client.get("/login").get_data(as_text=True)
            token = _csrf(html)
            resp = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
            assert resp.status_code == 302, f"{role} could not sign in"
        self.clients[role] = client
        return client

    def csrf(self, role):
        page = "/login" if role == ANON else "/account/tokens"
        html = self.client(role).get(page).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        return match.group(1) if match else ""

    def path(self, route, role, patient_id=None):
        values = dict(self.ids)
        if patient_id is not None:
            values["patient"] = patient_id
        if role != ANON:
            values["own_token"] = self.token_ids[self.circuit.role(_attr(role)).id]
        else:
            values["own_token"] = next(iter(self.token_ids.values()))
        return re.sub(r"\{([a-z_]+)\}", lambda m: str(values[m.group(1)]), route.path)

    def call(self, route, role, patient_id=None):
        path = self.path(route, role, patient_id)
        if route.api:
            headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role != ANON else {}
            client = self.app.test_client()
            if route.method == "GET":
                return client.get(path, headers=headers)
            return client.open(path, method=route.method, json={}, headers=headers)
        client = self.client(role)
        if route.method == "GET":
            return client.get(path)
        return client.open(path, method=route.method, data={"csrf_token": self.csrf(role)})


def extra_ids(db, circuit) -> dict:
    """Ids for the placeholders of triage and on-call routes."""
    from datetime import timedelta

    from app.core.time import utcnow
    from app.triage import services
    from app.triage.oncall import EscalationStep, OnCallShift

    alert = services.raise_alert(patient_id=circuit.patient.id, severity="orange", source="checkin",
                                 reason_code="matrix", summary="matrix")
    task = services.create_task(patient_id=circuit.patient.id, kind="call_patient", reason_code="matrix")
    now = utcnow()
    shift = OnCallShift(site_id=circuit.site.id, professional_id=circuit.oncologist.id,
                        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))
    step = EscalationStep(site_id=circuit.site.id, position=1, kind="professional",
                          professional_id=circuit.oncologist.id)
    db.session.add_all([shift, step])
    db.session.commit()
    return {"alert": alert.id, "task": task.id, "shift": shift.id, "step": step.id}


def _rx_model():
    from app.pathways.models import Prescription

    return Prescription


def _attr(role):
    return {"coordinating_nurse": "nurse", "oncologist": "oncologist", "hospital_pharmacist": "hospital_pharmacist",
            "community_pharmacist": "community_pharmacist", "gp": "gp", "community_nurse": "community_nurse",
            "admin": "admin"}[role]


def _csrf(html):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match
    return match.group(1)


def _is_denied(resp) -> bool:
    if resp.status_code in DENIED:
        return True
    location = resp.headers.get("Location", "")
    return resp.status_code == 302 and "/login" in location and "/logout" not in location


@pytest.fixture()
def walker(app, circuit, db):
    return Walker(app, circuit, db)


@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_route_allows_exactly_the_matrix_roles(walker, endpoint, db):
    route = MATRIX[endpoint]
    wrong = []
    for role in ROLES:
        resp = walker.call(route, role)
        assert resp.status_code < 500, f"{endpoint} as {role}: {resp.status_code}"
        denied = _is_denied(resp)
        expected_denied = role not in route.allowed
        if endpoint in ("auth.login", "auth.set_language", "auth.logout"):
            denied = resp.status_code in (401, 403, 404)
        if denied != expected_denied:
            wrong.append(f"{role}: got {resp.status_code} ({'denied' if denied else 'allowed'})")
    assert wrong == [], f"{route.method} {route.path}: " + "; ".join(wrong)


@pytest.mark.parametrize("endpoint", sorted(e for e, r in MATRIX.items() if r.patient_scoped))
def test_patient_outside_scope_is_refused_to_everyone_and_logged(walker, endpoint, db, circuit):
    route = MATRIX[endpoint]
    other = circuit.other_patient.id
    for role in ROLES:
        if role == ANON:
            continue
        before = db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(AuditEvent.action == "denied"))
        resp = walker.call(route, role, patient_id=other)
        assert resp.status_code in (403, 404), f"{endpoint} as {role} on another site's patient: {resp.status_code}"
        after = db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(AuditEvent.action == "denied"))
        assert after == before + 1, f"{endpoint} as {role}: the refusal was not logged"
    assert ADMIN in ROLES
