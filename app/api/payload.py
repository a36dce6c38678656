"""Reading requests and answering them: JSON bodies, query strings, services, per-record access."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.care import access
from app.care.models import Patient
from app.core.errors import ValidationFailed
from app.extensions import db

from .base import ApiError, current_professional, deny, invalid
from .fields import Int

T = TypeVar("T")
_INTEGER = re.compile(r"-?\d{1,10}")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_object() -> dict[str, Any]:
    """The request's JSON object, or 415 / 413 / 400 with a message saying what is wrong."""
    if not request.is_json:
        raise ApiError(415, _("Unsupported content type: send application/json."))
    raw = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, _("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise ApiError(400, _("The body must be a JSON object."))
    return data


def parse_body(schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """The valid part of the JSON object sent and the type errors, field by field."""
    data = json_object()
    try:
        return schema.load(data), {}
    except ValidationError as exc:
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return valid, messages


def parse_query(schema: Schema) -> dict[str, Any]:
    """Query-string arguments typed by ``schema``: empty values are absent, integers parsed."""
    raw: dict[str, Any] = {}
    for key, value in request.args.items():
        if value == "":
            continue
        if isinstance(schema.fields.get(key), Int) and _INTEGER.fullmatch(value):
            raw[key] = int(value)
        else:
            raw[key] = value
    try:
        return schema.load(raw)
    except ValidationError as exc:
        raise invalid(exc.messages) from None


def call_service(service: Callable[[dict[str, Any]], T], data: dict[str, Any],
                 type_errors: dict[str, Any], *, dry_run: bool = True) -> T:
    """Run ``service`` on the parsed data; answer 422 with every message it and the types gave.

    When some fields already failed their type check, the service still runs on
    the others inside a savepoint that is always rolled back, so the client gets
    the rule errors (phone, MRN, consent, dates) in the same answer.
    """
    if type_errors:
        service_errors = _service_errors(service, data) if dry_run else {}
        raise invalid({**service_errors, **type_errors})
    try:
        return service(data)
    except ValidationFailed as exc:
        raise invalid(exc.errors) from None


def _service_errors(service: Callable[[dict[str, Any]], Any], data: dict[str, Any]) -> dict[str, list[str]]:
    savepoint = db.session.begin_nested()
    try:
        service(data)
    except ValidationFailed as exc:
        return exc.errors
    except SQLAlchemyError:
        # A column that failed its type check is missing: the type errors say it already.
        return {}
    finally:
        savepoint.rollback()
    return {}


def load_patient(patient_id: int, need: str = "view") -> Patient:
    """The patient if the token's professional may ``need`` it (view, edit, prescribe).

    Same rule as the pages: out of scope answers 404 (existence not revealed),
    in scope without the right answers 403; both are audited.
    """
    patient = db.session.get(Patient, patient_id)
    refused = access.refusal(current_professional(), patient, need)
    if refused is not None:
        deny(404 if refused.hidden else 403, patient_id=patient.id if patient else None,
             reason=refused.reason)
    return patient


def require_role(roles, reason: str) -> None:
    if current_professional().role not in roles:
        deny(403, reason=reason)
