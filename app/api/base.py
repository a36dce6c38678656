"""The API blueprint: bearer-token authentication, audit context and JSON errors.

The API never looks at the session cookie: a browser that is signed in to the
pages is still anonymous here, so a cross-site request cannot ride on it. That
is also why the blueprint is exempt from CSRF.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.auth.services import professional_for_token
from app.care.models import Professional
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import CLINICAL_ROLES
from app.extensions import csrf, db

from .docs import operation_of

log = logging.getLogger("oncolink.api")

bp = Blueprint("api", __name__)
csrf.exempt(bp)

REALM = "Onco'Link API"


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "fields"?}}``."""

    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


def invalid(fields: dict[str, Any]) -> ApiError:
    return ApiError(422, _("The data sent is not valid; see the messages per field."), plain_messages(fields))


def plain_messages(messages: Any) -> Any:
    """Lazy translated strings and nested marshmallow errors as plain JSON."""
    if isinstance(messages, dict):
        return {str(k): plain_messages(v) for k, v in messages.items()}
    if isinstance(messages, (list, tuple)):
        return [plain_messages(m) for m in messages]
    return str(messages)


def error_response(status: int, message: str, fields: dict | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()
    return error_response(exc.status, exc.message, exc.fields)


@bp.errorhandler(ValidationFailed)
def _validation_failed(exc: ValidationFailed):
    db.session.rollback()
    return error_response(422, _("The data sent is not valid; see the messages per field."),
                          plain_messages(exc.errors))


@bp.errorhandler(IntegrityError)
def _conflict(exc: IntegrityError):
    # A concurrent request saved a clashing row between our checks and our commit.
    db.session.rollback()
    log.warning("integrity conflict on %s %s", request.method, request.endpoint)
    return error_response(409, _("This conflicts with a change saved meanwhile; reload and try again."))


def _unauthorised(error: str | None) -> Response:
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    return error_response(401, _("Authentication required: send a valid API token as "
                                 "'Authorization: Bearer <token>'."),
                          headers={"WWW-Authenticate": challenge})


def bearer_token() -> str | None:
    scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


@bp.before_request
def authenticate():
    """Every endpoint but the public ones needs a valid token of an active clinician."""
    op = operation_of(current_app.view_functions.get(request.endpoint or ""))
    if op is not None and op.public:
        return None
    raw = bearer_token()
    if raw is None:
        return _unauthorised(None)
    prof = professional_for_token(raw)
    if prof is None:
        db.session.rollback()
        return _unauthorised("invalid_token")
    g.api_professional = prof
    # Replaces the anonymous (or cookie-based) context set by the app-wide hook;
    # the app-wide teardown restores the value from before both.
    audit.set_context(audit.AuditContext(prof.id, prof.email, request.remote_addr))
    if prof.role not in CLINICAL_ROLES:
        deny(403, reason="role:api")
    return None


def current_professional() -> Professional:
    return g.api_professional


def deny(status: int, *, patient_id: int | None = None, reason: str) -> None:
    """Log the refusal in the audit trail (its own commit) and answer ``status``."""
    db.session.rollback()
    audit.record("denied", patient_id=patient_id, detail={"reason": reason, "status": status, "via": "api"})
    db.session.commit()
    raise ApiError(status, _("Not found.") if status == 404 else _("You are not allowed to do this."))
