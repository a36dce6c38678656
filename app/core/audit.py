"""Append-only audit log of every read and change of a patient record.

The web layer (or a job) sets who is acting and from where with ``set_context``;
services call ``record``. Rows can be added, never updated or deleted through the
application (ORM guards below); on PostgreSQL a trigger also refuses it, except
inside the retention purge, which sets ``oncolink.audit_purge``.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from app.extensions import db

from .db import UTCDateTime
from .time import utcnow


class AuditImmutableError(RuntimeError):
    """Raised when code tries to change or delete an audit row."""


@dataclass(frozen=True)
class AuditContext:
    actor_id: int | None
    actor_label: str
    ip: str | None = None


_context: ContextVar[AuditContext] = ContextVar(
    "audit_context", default=AuditContext(None, "system")
)


def set_context(ctx: AuditContext):
    return _context.set(ctx)


def reset_context(token) -> None:
    _context.reset(token)


def current_context() -> AuditContext:
    return _context.get()


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id = db.Column(db.BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    at = db.Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("professional.id"), index=True)
    actor_label = db.Column(db.String(200), nullable=False)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), index=True)
    action = db.Column(db.String(40), nullable=False)
    object_type = db.Column(db.String(60))
    object_id = db.Column(db.String(60))
    detail = db.Column(db.JSON)
    ip = db.Column(db.String(64))

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action} patient={self.patient_id}>"


def record(action: str, *, patient_id: int | None = None, obj=None, object_type: str | None = None,
           object_id=None, detail: dict | None = None) -> AuditEvent:
    """Add an audit row to the current transaction (it commits with the change it describes)."""
    ctx = current_context()
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = object_id if object_id is not None else getattr(obj, "id", None)
    row = AuditEvent(
        actor_id=ctx.actor_id,
        actor_label=ctx.actor_label,
        patient_id=patient_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        detail=detail or None,
        ip=ctx.ip,
    )
    db.session.add(row)
    return row


def record_many(action: str, entries: Iterable[tuple[int | None, str, object, dict | None]]) -> int:
    """``record`` for many rows in one statement: (patient_id, object_type, object_id, detail)
    each; they commit with the transaction. Returns how many were written."""
    ctx = current_context()
    now = utcnow()
    rows = [{"at": now, "actor_id": ctx.actor_id, "actor_label": ctx.actor_label, "patient_id": patient_id,
             "action": action, "object_type": object_type,
             "object_id": str(object_id) if object_id is not None else None, "detail": detail or None, "ip": ctx.ip}
            for patient_id, object_type, object_id, detail in entries]
    if rows:
        db.session.execute(insert(AuditEvent.__table__), rows)
    return len(rows)


def changed_fields(obj) -> dict:
    """Names of the attributes of ``obj`` changed in this unit of work (values are not logged)."""
    state = inspect(obj)
    return {
        attr.key: True for attr in state.attrs if attr.history.has_changes()
    }


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target):
    raise AuditImmutableError("audit rows cannot be changed")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise AuditImmutableError("audit rows cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk(orm_execute_state):
    if orm_execute_state.is_update or orm_execute_state.is_delete:
        for mapper in orm_execute_state.all_mappers:
            if mapper.class_ is AuditEvent:
                raise AuditImmutableError("audit rows cannot be changed or deleted")


POSTGRES_GUARD_SQL = """
CREATE OR REPLACE FUNCTION audit_event_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND coalesce(current_setting('oncolink.audit_purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only';
END;
$$ LANGUAGE plpgsql;
"""
POSTGRES_TRIGGERS = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_immutable()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_immutable()",
)
