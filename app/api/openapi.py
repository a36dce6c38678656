"""The OpenAPI 3 document, built from the URL map, the views' operations and the schemas.

Every API route found in the URL map is described from its own ``@operation``
and docstring, so the document cannot drift from the code; a view without an
operation is left out, which the tests catch.
"""
from __future__ import annotations

import inspect
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from werkzeug.routing import Rule

from .base import bp
from .docs import Operation, operation, operation_of
from .fields import INT32_MAX
from .schemas import ErrorSchema

TITLE = "Onco'Link API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Home follow-up of patients on oral anticancer drugs. Authenticate with a personal API "
    "token (created on the account's *API tokens* page) sent as `Authorization: Bearer <token>`; "
    "the API acts as that professional, with the same per-record access as the pages, and every "
    "read or change of a patient record is written to the audit log. Bodies are JSON objects; "
    "unknown fields are refused. Errors are `{\"error\": {\"code\", \"message\", \"fields\"}}` "
    "where `fields` maps each field of the request to its messages."
)
_PATH_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

_ERRORS = {
    400: ("BadRequest", "The body is not JSON, or not a JSON object."),
    401: ("Unauthorized", "No token, or a token that is unknown, expired or revoked."),
    403: ("Forbidden", "Your role may not do this for this patient (audited)."),
    404: ("NotFound", "No such record, or one outside your patients (audited)."),
    409: ("Conflict", "A concurrent change clashed with this one; reload and retry."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The body is not sent as application/json."),
    422: ("UnprocessableEntity", "Invalid data; `fields` names each field with its messages."),
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """``/patients/<int(...):patient_id>`` -> ``/patients/{patient_id}`` and its parameters."""
    parameters = []
    for converter, name in _PATH_ARGUMENT.findall(rule):
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":
            schema = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _PATH_ARGUMENT.sub(r"{\2}", rule), parameters


def _error_codes(op: Operation, rule: Rule) -> list[int]:
    codes = set(op.extra_errors)
    if not op.public:
        codes |= {401, 403}
    if rule.arguments:
        codes.add(404)
    if op.body is not None:
        codes |= {400, 409, 413, 415, 422}
    if op.query is not None:
        codes.add(422)
    return sorted(codes)


def _operation(rule: Rule, operation_id: str, view, op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": op.response}}
    else:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    spec_op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {str(op.status): success},
    }
    description = inspect.cleandoc(view.__doc__ or "")
    if description:
        spec_op["description"] = description
    for code in _error_codes(op, rule):
        spec_op["responses"][str(code)] = _ERRORS[code][0]
    if op.body is not None:
        spec_op["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    if op.query is not None:
        spec_op["parameters"] = [{"in": "query", "schema": op.query}]
    if op.public:
        spec_op["security"] = []
    return spec_op


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title=TITLE, version=VERSION, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION}, security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer", "description": "A personal API token (olk_...).",
    })
    spec.components.schema("Error", schema=ErrorSchema)
    for name, description in _ERRORS.values():
        spec.components.response(name, {
            "description": description, "content": {"application/json": {"schema": "Error"}},
        })
    paths: dict[str, dict[str, Any]] = {}
    parameters: dict[str, list[dict[str, Any]]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] != bp.name:
            continue
        view = app.view_functions[rule.endpoint]
        op = operation_of(view)
        if op is None:
            continue
        path, parameters[path] = openapi_path(rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        name = rule.endpoint.split(".", 1)[1]
        for method in methods:
            operation_id = name if len(methods) == 1 else f"{name}_{method.lower()}"
            paths.setdefault(path, {})[method.lower()] = _operation(rule, operation_id, view, op)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path], parameters=parameters[path] or None)
    return spec.to_dict()


@bp.get("/openapi.json")
@operation(summary="This OpenAPI 3 document", tag="meta", public=True)
def openapi():
    """Public: describes the API, holds no data."""
    return build_spec(current_app)
