"""Alerts with their history of actions, and nurse work items (call the patient)."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class Severity(StrEnum):
    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    INFO = "info"


SEVERITY_RANK = {Severity.RED: 0, Severity.ORANGE: 1, Severity.YELLOW: 2, Severity.INFO: 3}
SEVERITY_LABELS = {
    Severity.RED: _l("Red: act now"),
    Severity.ORANGE: _l("Orange: call within one working day"),
    Severity.YELLOW: _l("Yellow: review at next contact"),
    Severity.INFO: _l("Information"),
}


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(db.Model):
    __tablename__ = "alert"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    severity = db.Column(db.String(10), nullable=False)
    source = db.Column(db.String(20), nullable=False)  # checkin, no_response, adherence, professional
    reason_code = db.Column(db.String(60), nullable=False)
    summary = db.Column(db.String(300), nullable=False)
    detail = db.Column(db.JSON)
    checkin_id = db.Column(db.Integer, index=True)
    status = db.Column(db.String(15), nullable=False, default=AlertStatus.OPEN)
    owner_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    due_at = db.Column(UTCDateTime(), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    acknowledged_at = db.Column(UTCDateTime())
    acknowledged_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    resolved_at = db.Column(UTCDateTime())
    resolved_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    resolution_note = db.Column(db.Text)
    escalation_level = db.Column(db.Integer, nullable=False, default=0)
    # Alerts of one patient close in time form a group shown as one line of the queue.
    group_id = db.Column(db.Integer, index=True)
    # The exact grading rule version that fired, when a rule did.
    rule_id = db.Column(db.Integer, db.ForeignKey("grading_rule.id"))
    # A red alert raised while an earlier red alert of the same check-in still waited for its
    # acknowledgement: that alert's page covers it (one page per check-in), its acknowledgement
    # acknowledges this one, and escalation follows that alert only.
    paged_with_id = db.Column(db.Integer, db.ForeignKey("alert.id"))

    patient = db.relationship("Patient")
    owner = db.relationship("Professional", foreign_keys=[owner_id])
    paged_with = db.relationship("Alert", remote_side=[id], foreign_keys=[paged_with_id])
    actions = db.relationship("AlertAction", back_populates="alert", order_by="AlertAction.at")

    __table_args__ = (
        db.Index("ix_alert_site_status_due", "site_id", "status", "due_at"),
        db.CheckConstraint("severity IN ('red', 'orange', 'yellow', 'info')", name="severity"),
        db.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
        db.CheckConstraint("status <> 'resolved' OR resolution_note IS NOT NULL", name="resolved_note"),
    )

    def __repr__(self) -> str:
        return f"<Alert {self.id} {self.severity} {self.status}>"


class AlertAction(db.Model):
    __tablename__ = "alert_action"

    id = db.Column(db.Integer, primary_key=True)
    alert_id = db.Column(db.Integer, db.ForeignKey("alert.id"), nullable=False, index=True)
    kind = db.Column(db.String(30), nullable=False)  # created, acknowledged, call, advice, paused, referred, note, resolved
    note = db.Column(db.Text)
    actor_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    alert = db.relationship("Alert", back_populates="actions")
    actor = db.relationship("Professional")

    def __repr__(self) -> str:
        return f"<AlertAction {self.id} {self.kind}>"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class NurseTask(db.Model):
    """A work item for the coordinating nurses, e.g. call a patient who did not answer."""

    __tablename__ = "nurse_task"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    kind = db.Column(db.String(30), nullable=False)
    reason_code = db.Column(db.String(60), nullable=False)
    checkin_id = db.Column(db.Integer)
    # Idempotency: one task per patient, kind and check-in (key built by the service).
    dedupe_key = db.Column(db.String(120), nullable=False, unique=True)
    status = db.Column(db.String(12), nullable=False, default=TaskStatus.OPEN)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    done_at = db.Column(UTCDateTime())
    done_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    note = db.Column(db.Text)

    patient = db.relationship("Patient")

    __table_args__ = (db.Index("ix_nurse_task_site_status", "site_id", "status"),)

    def __repr__(self) -> str:
        return f"<NurseTask {self.id} {self.kind} {self.status}>"
