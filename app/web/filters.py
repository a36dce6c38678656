"""Template filters and globals."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import format_date, format_datetime, get_locale

from app.care.models import ORGANISATION_KIND_LABELS, PATIENT_STATUS_LABELS
from app.core.roles import ROLE_LABELS
from app.core.validators import format_phone
from app.pathways.models import END_REASON_LABELS, LEAD_LABELS, PRESCRIPTION_EVENT_LABELS, SEQUENCE_LABELS


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
