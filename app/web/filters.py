"""Template filters and globals."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import lazy_gettext as _l

from app.care.models import ORGANISATION_KIND_LABELS, PATIENT_STATUS_LABELS
from app.core.roles import ROLE_LABELS
from app.core.validators import format_phone
from app.triage.models import SEVERITY_LABELS
from app.pathways.models import END_REASON_LABELS, LEAD_LABELS, PRESCRIPTION_EVENT_LABELS, SEQUENCE_LABELS


SEVERITY_SHORT = {"red": _l("RED"), "orange": _l("ORANGE"), "yellow": _l("YELLOW"), "info": _l("INFO")}
ALERT_STATUS_LABELS = {"open": _l("Open"), "acknowledged": _l("Acknowledged"), "resolved": _l("Resolved")}
TASK_REASON_LABELS = {"no_response": _l("No answer to the weekly check-in"),
                      "call_request": _l("Asked for a call"), "no_reply": _l("No answer to the weekly check-in")}
ENROLMENT_EVENT_LABELS = {"enrolled": _l("Enrolled"), "sequence": _l("Sequence"), "lead": _l("Lead team"),
                          "renewal": _l("Sequence renewed"),
                          "pathway": _l("Pathway"), "ended": _l("Follow-up ended")}


CHECKIN_STATUS_LABELS = {"scheduled": _l("Scheduled"), "sent": _l("Sent, no answer yet"),
                         "in_progress": _l("In progress"), "completed": _l("Completed"),
                         "partial": _l("Partly answered"), "no_response": _l("No answer"),
                         "cancelled": _l("Cancelled")}


def answer_value(value) -> str:
    if value is True:
        return str(_l("yes"))
    if value is False:
        return str(_l("no"))
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else str(value)


def _label(mapping):
    def label(value):
        if value is None:
            return ""
        return mapping.get(value, value)
    return label


def init_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        phone=format_phone,
        role_label=_label(ROLE_LABELS),
        org_kind_label=_label(ORGANISATION_KIND_LABELS),
        status_label=_label(PATIENT_STATUS_LABELS),
        sequence_label=_label(SEQUENCE_LABELS),
        lead_label=_label(LEAD_LABELS),
        end_reason_label=_label(END_REASON_LABELS),
        rx_event_label=_label(PRESCRIPTION_EVENT_LABELS),
        severity_label=_label(SEVERITY_LABELS),
        severity_short=_label(SEVERITY_SHORT),
        alert_status_label=_label(ALERT_STATUS_LABELS),
        task_reason_label=_label(TASK_REASON_LABELS),
        event_kind_label=_label(ENROLMENT_EVENT_LABELS),
        checkin_status_label=_label(CHECKIN_STATUS_LABELS),
        answer_value=answer_value,
        d=lambda v: format_date(v, "medium") if isinstance(v, date) else "",
        dt=lambda v: format_datetime(v, "short") if isinstance(v, datetime) else "",
    )

    app.jinja_env.globals["weekday_name"] = weekday_name
    app.jinja_env.globals["get_locale"] = get_locale

    @app.context_processor
    def globals_():
        return {"languages": current_app.config["LANGUAGES"], "demo_tools": current_app.config.get("DEMO_TOOLS")}


def weekday_name(index: int) -> str:
    from app.web.forms import WEEKDAYS

    return str(dict(WEEKDAYS).get(index, index))
