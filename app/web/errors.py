"""Error pages for people, JSON errors for API clients; never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger("oncolink.errors")


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def _messages():
    return {
        400: _("The request could not be understood."),
        401: _("Authentication required."),
        403: _("You are not allowed to do this."),
        404: _("Not found."),
        405: _("Method not allowed."),
        413: _("The request is too large."),
        415: _("Unsupported content type: send application/json."),
        429: _("Too many requests; try again later."),
        500: _("Something went wrong on our side; the team has been told."),
    }


def _message(code: int, default: str | None = None) -> str:
    if code >= 500 and request.path.startswith("/webhooks/"):
        # Read by the provider's logs and whoever checks them: nothing is claimed that did not
        # happen (nobody is told by this answer, and the request may not have been stored).
        return _("The request failed on our side and may not have been stored.")
    return _messages().get(code, default)


def init_errorhandlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        message = _message(code, exc.description)
        if _wants_json():
            body = {"error": {"code": code, "message": message}}
            return jsonify(body), code
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = _("The form expired or was sent from elsewhere; please try again.")
        if _wants_json():
            return jsonify({"error": {"code": 400, "message": message}}), 400
        return render_template("error.html", code=400, message=message), 400

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        # Only the exception type and the route: values may carry health data.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.endpoint)
        if app.config.get("TESTING") and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise exc
        message = _message(500)
        if _wants_json():
            return jsonify({"error": {"code": 500, "message": message}}), 500
        return render_template("error.html", code=500, message=message), 500
