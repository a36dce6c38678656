"""Shared helpers of the API tests: tokens, a valid enrolment body, row counts."""
from __future__ import annotations

from sqlalchemy import func, select, table

from app.auth.services import issue_api_token
from app.core.time import utcnow

# The tables a request on patients may write to.
PATIENT_TABLES = ("patient", "enrolment", "enrolment_event", "prescription", "prescription_event",
                  "care_team_member", "audit_event")


def bearer(db, prof) -> dict[str, str]:
    raw = issue_api_token(prof, "test")
    db.session.commit()
    # These tests read English messages; French is the default (see test_api_messages_follow_accept_language).
    return {"Authorization": f"Bearer {raw}", "Accept-Language": "en"}


def enrol_body(circuit, **changes) -> dict:
    from tests.factories import drug

    today = utcnow().date().isoformat()
    body = {
        "mrn": "LYN900", "first_name": "Alain", "last_name": "Bernard", "birth_date": "1950-06-01",
        "phone": "06 12 34 56 78", "consent_given": True, "consent_date": today,
        "pathway": "A", "sequence": "S1", "lead_team": "hospital",
        "drug_id": drug("capecitabine").id, "dose": "2000 mg", "start_date": today,
        "prescriber_id": circuit.oncologist.id,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def row_counts(db) -> dict[str, int]:
    db.session.rollback()
    return {name: db.session.scalar(select(func.count()).select_from(table(name))) for name in PATIENT_TABLES}


def field_errors(response) -> dict[str, list[str]]:
    body = response.get_json()
    assert body["error"]["code"] == response.status_code
    return body["error"].get("fields", {})
