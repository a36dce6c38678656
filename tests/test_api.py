"""REST API v1: token authentication, transport errors, audit rows and the OpenAPI document."""
from __future__ import annotations

import json
import re
from datetime import timedelta

from openapi_spec_validator import validate
from sqlalchemy import select

from app.auth.models import ApiToken
from app.auth.services import revoke_api_token
from app.core.audit import AuditEvent
from app.core.time import set_clock, utcnow
from tests.api_helpers import bearer, enrol_body, row_counts

LIST = "/api/v1/patients"


def _audit(db, **where):
    query = select(AuditEvent).order_by(AuditEvent.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEvent, key) == value)
    return db.session.scalars(query).all()


# ------------------------------------------------------------------ authentication

def test_no_token_is_401_with_a_bearer_challenge(circuit, client):
    resp = client.get(LIST)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    assert resp.get_json()["error"]["code"] == 401


def test_other_schemes_and_empty_tokens_are_401(circuit, client):
    for header in ("Basic bm9ib2R5OnNlY3JldA==", "Bearer", "Bearer    ", "olk_abc"):
        resp = client.get(LIST, headers={"Authorization": header})
        assert resp.status_code == 401, header


def test_unknown_token_is_401_invalid_token(circuit, client):
    resp = client.get(LIST, headers={"Authorization": "Bearer olk_not-a-real-token"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_valid_token_authenticates_and_is_marked_used(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    assert client.get(LIST, headers=headers).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.professional_id == circuit.nurse.id))
    assert token.last_used_at is not None


def test_revoked_token_is_401(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    assert client.get(LIST, headers=headers).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.professional_id == circuit.nurse.id))
    revoke_api_token(token)
    db.session.commit()
    assert client.get(LIST, headers=headers).status_code == 401


def test_expired_token_is_401(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    set_clock(utcnow() + timedelta(days=89))
    assert client.get(LIST, headers=headers).status_code == 200
    set_clock(utcnow() + timedelta(days=2))
    assert client.get(LIST, headers=headers).status_code == 401


def test_token_of_a_deactivated_professional_is_401(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    circuit.nurse.active = False
    db.session.commit()
    assert client.get(LIST, headers=headers).status_code == 401


def test_session_cookie_alone_does_not_authenticate(circuit, login):
    client = login(circuit.nurse)
    assert client.get("/").status_code == 200  # signed in to the pages
    resp = client.get(LIST)
    assert resp.status_code == 401
    resp = client.post(LIST, json=enrol_body(circuit))
    assert resp.status_code == 401


def test_token_wins_over_a_session_cookie_of_someone_else(circuit, login, db):
    client = login(circuit.other_nurse)
    resp = client.get(f"/api/v1/patients/{circuit.patient.id}", headers=bearer(db, circuit.nurse))
    assert resp.status_code == 200
    assert _audit(db, action="read")[-1].actor_id == circuit.nurse.id


def test_api_needs_no_csrf_token(circuit, app, db):
    assert app.config["WTF_CSRF_ENABLED"]
    client = app.test_client()
    resp = client.post(LIST, json=enrol_body(circuit), headers=bearer(db, circuit.nurse))
    assert resp.status_code == 201, resp.get_json()


def test_admin_token_is_refused_and_audited(circuit, client, db):
    headers = bearer(db, circuit.admin)
    assert client.get("/api/v1/drugs", headers=headers).status_code == 403
    denied = _audit(db, action="denied")
    assert denied and denied[-1].actor_id == circuit.admin.id


# ------------------------------------------------------------------ transport errors

def test_non_json_content_type_is_415(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    resp = client.post(LIST, data={"mrn": "X"}, headers=headers)
    assert resp.status_code == 415
    assert resp.get_json()["error"]["code"] == 415
    resp = client.post(LIST, data=json.dumps(enrol_body(circuit)), headers=headers)  # no content type
    assert resp.status_code == 415
    resp = client.patch(f"/api/v1/patients/{circuit.patient.id}", data="{}", content_type="text/plain",
                        headers=headers)
    assert resp.status_code == 415


def test_malformed_json_is_400_with_a_message(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    for raw in ('{"mrn": ', "", "{'mrn': 'x'}", '{"checkin_hour": NaN}', "[" * 50_000, b"\xff\xfe\x00"):
        resp = client.post(LIST, data=raw, content_type="application/json", headers=headers)
        assert resp.status_code == 400, raw[:20]
        assert "JSON" in resp.get_json()["error"]["message"]


def test_json_that_is_not_an_object_is_400(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    for body in ([], [enrol_body(circuit)], "text", 3, None, True):
        resp = client.post(LIST, data=json.dumps(body), content_type="application/json", headers=headers)
        assert resp.status_code == 400, body
        assert resp.get_json()["error"]["message"]


def test_oversized_body_is_413_json(circuit, client, db, app):
    headers = bearer(db, circuit.nurse)
    body = enrol_body(circuit, notes="x" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    before = row_counts(db)
    resp = client.post(LIST, json=body, headers=headers)
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == 413
    assert row_counts(db) == before


def test_unknown_route_and_method_answer_json(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    assert client.get("/api/v1/nothing-here", headers=headers).get_json()["error"]["code"] == 404
    resp = client.delete(LIST, headers=headers)
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == 405
    assert client.get("/api/v1/patients/99999999999999999999", headers=headers).status_code == 404
    assert client.get("/api/v1/patients/0", headers=headers).status_code == 404


def test_responses_are_not_cached(circuit, client, db):
    resp = client.get(f"/api/v1/patients/{circuit.patient.id}", headers=bearer(db, circuit.nurse))
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers


# ------------------------------------------------------------------ audit

def test_reads_and_changes_are_audited_with_the_token_professional(circuit, client, db):
    headers = bearer(db, circuit.nurse)
    pid = circuit.patient.id
    for suffix in ("", "/care-team", "/prescriptions", "/enrolment"):
        before = len(_audit(db, action="read", patient_id=pid))
        assert client.get(f"/api/v1/patients/{pid}{suffix}", headers=headers).status_code == 200
        reads = _audit(db, action="read", patient_id=pid)
        assert len(reads) == before + 1, suffix
        assert reads[-1].actor_id == circuit.nurse.id
    resp = client.patch(f"/api/v1/patients/{pid}", json={"checkin_hour": 18}, headers=headers)
    assert resp.status_code == 200
    update = _audit(db, action="update", patient_id=pid)[-1]
    assert update.actor_id == circuit.nurse.id and update.detail == {"fields": ["checkin_hour"]}
    assert client.get(LIST, headers=headers).status_code == 200
    assert _audit(db, action="list")[-1].actor_id == circuit.nurse.id


def test_denials_are_audited(circuit, client, db):
    headers = bearer(db, circuit.community_pharmacist)
    pid = circuit.patient_no_team.id
    assert client.get(f"/api/v1/patients/{pid}", headers=headers).status_code == 404
    denied = _audit(db, action="denied", patient_id=pid)
    assert len(denied) == 1 and denied[0].actor_id == circuit.community_pharmacist.id
    assert not _audit(db, action="read", patient_id=pid)


# ------------------------------------------------------------------ OpenAPI

def _api_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                yield path, method.lower()


def test_openapi_document_is_public_valid_and_complete(app, client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    validate(doc)  # raises on an invalid OpenAPI 3 document
    assert doc["openapi"].startswith("3.")
    routes = list(_api_routes(app))
    assert len(routes) >= 12
    for path, method in routes:
        assert path in doc["paths"], path
        assert method in doc["paths"][path], (method, path)


def test_openapi_documents_bodies_errors_and_security(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    create = doc["paths"]["/api/v1/patients"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    enrol = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"mrn", "phone", "consent_given", "drug_id", "prescriber_id"} <= set(enrol["required"])
    assert enrol["additionalProperties"] is False
    assert {"401", "403", "415", "422", "201"} <= set(create["responses"])
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    text = json.dumps(doc)
    assert "password" not in text and "token_digest" not in text


def test_api_messages_follow_accept_language(circuit, client, db):
    from app.auth.services import issue_api_token

    raw = issue_api_token(circuit.nurse, "lang")
    db.session.commit()
    url = f"/api/v1/patients/{circuit.patient.id}"
    french = client.patch(url, json={"phone": "12"}, headers={"Authorization": f"Bearer {raw}"})
    english = client.patch(url, json={"phone": "12"},
                           headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})
    assert french.status_code == english.status_code == 422
    assert french.get_json()["error"]["fields"]["phone"] != english.get_json()["error"]["fields"]["phone"]
    assert "valid" in english.get_json()["error"]["fields"]["phone"][0]
