"""Reading the audit trail: filters, keyset pages, and the trace that a patient's trail was read.

Nothing here changes or removes an audit row. Pages are cut on the row id (newest first), so
a page costs the same number of statements however deep it is and however large the table.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import exists, func, select

from app.care.models import Patient, Professional
from app.core import audit
from app.core.audit import AuditEvent
from app.core.errors import ValidationFailed
from app.extensions import db


@dataclass(frozen=True)
class AuditFilters:
    patient_id: int | None = None
    actor: str = ""  # an account id or an e-mail address
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def is_empty(self) -> bool:
        return not (self.patient_id or self.actor or self.action or self.date_from or self.date_to)


@dataclass(frozen=True)
class AuditRow:
    """A detached copy of an audit row: the page renders it after the commit without reloading it."""

    id: int
    at: datetime
    actor_id: int | None
    actor_label: str
    patient_id: int | None
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict | None
    ip: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditRow:
        return cls(event.id, event.at, event.actor_id, event.actor_label, event.patient_id, event.action,
                   event.object_type, event.object_id, event.detail, event.ip)


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    newer: int | None  # cursor for the page of newer rows (``after``), None on the first page
    older: int | None  # cursor for the page of older rows (``before``), None on the last page


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def _conditions(filters: AuditFilters, tz_name: str) -> list:
    errors: dict[str, str] = {}
    conditions = []
    if filters.patient_id is not None:
        conditions.append(AuditEvent.patient_id == filters.patient_id)
    actor = filters.actor.strip()
    if actor.isdigit():
        conditions.append(AuditEvent.actor_id == int(actor))
    elif actor:
        actor_id = db.session.scalar(select(Professional.id).where(func.lower(Professional.email) == actor.lower()))
        if actor_id is None:
            errors["actor"] = _("No account has this e-mail address.")
        conditions.append(AuditEvent.actor_id == actor_id)
    if filters.action.strip():
        conditions.append(AuditEvent.action == filters.action.strip())
    tz = ZoneInfo(tz_name)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        errors["date_to"] = _("The end date is before the start date.")
    if filters.date_from:
        conditions.append(AuditEvent.at >= _local_midnight_utc(filters.date_from, tz))
    if filters.date_to:
        conditions.append(AuditEvent.at < _local_midnight_utc(filters.date_to + timedelta(days=1), tz))
    if errors:
        raise ValidationFailed(errors)
    return conditions


def browse_audit_log(filters: AuditFilters, *, before: int | None = None, after: int | None = None,
                     per_page: int = 50, tz_name: str = "Europe/Paris") -> AuditPage:
    """One page of audit rows, newest first; reading a patient's trail is itself recorded."""
    conditions = _conditions(filters, tz_name)
    stmt = select(AuditEvent).where(*conditions)
    if after is not None:
        rows = list(db.session.scalars(
            stmt.where(AuditEvent.id > after).order_by(AuditEvent.id.asc()).limit(per_page + 1)))
        newer = rows[per_page - 1].id if len(rows) > per_page else None
        rows = rows[:per_page][::-1]
        older = rows[-1].id if rows and _any(conditions, AuditEvent.id < rows[-1].id) else None
    else:
        if before is not None:
            stmt = stmt.where(AuditEvent.id < before)
        rows = list(db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(per_page + 1)))
        older = rows[per_page - 1].id if len(rows) > per_page else None
        rows = rows[:per_page]
        newer = rows[0].id if rows and before is not None and _any(conditions, AuditEvent.id > rows[0].id) else None
    if filters.patient_id is not None and db.session.get(Patient, filters.patient_id) is not None:
        # Who looked at who accessed a record is itself part of that record's trail.
        audit.record("audit_read", patient_id=filters.patient_id, object_type="AuditEvent",
                     detail={"results": len(rows), "filters": _described(filters)})
    return AuditPage(rows=[AuditRow.of(r) for r in rows], newer=newer, older=older)


def _any(conditions: list, extra) -> bool:
    return bool(db.session.scalar(select(exists().where(*conditions, extra))))


def _described(filters: AuditFilters) -> dict[str, str]:
    described = {"actor": filters.actor.strip(), "action": filters.action.strip(),
                 "from": filters.date_from.isoformat() if filters.date_from else "",
                 "to": filters.date_to.isoformat() if filters.date_to else ""}
    return {k: v for k, v in described.items() if v}
