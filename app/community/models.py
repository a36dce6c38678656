"""Pharmaceutical interviews, medication reconciliations and community visits."""
from __future__ import annotations

from enum import StrEnum

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class InterviewKind(StrEnum):
    INITIAL = "initial"
    DAILY_LIFE = "daily_life_side_effects"
    ADHERENCE = "adherence"


class ReconciliationStatus(StrEnum):
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"


class VisitKind(StrEnum):
    HOME = "home"
    OFFICE = "office"
    PHONE = "phone"


class PharmacistInterview(db.Model):
    """One interview of the 2020 pharmacy convention, with its key answers and what comes next."""

    __tablename__ = "pharmacist_interview"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    pharmacist_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False, index=True)
    kind = db.Column(db.String(30), nullable=False)
    held_on = db.Column(db.Date, nullable=False)
    # {question code: {"answer": "yes" | "no", "comment": str}}
    answers = db.Column(db.JSON, nullable=False)
    notes = db.Column(db.Text)
    next_due_kind = db.Column(db.String(30), nullable=False)
    next_due_on = db.Column(db.Date, nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    pharmacist = db.relationship("Professional")

    __table_args__ = (
        db.Index("ix_pharmacist_interview_patient_held", "patient_id", "held_on"),
        db.CheckConstraint("kind IN ('initial', 'daily_life_side_effects', 'adherence')", name="kind"),
    )

    def __repr__(self) -> str:
        return f"<PharmacistInterview {self.id} {self.kind}>"


class MedicationReconciliation(db.Model):
    """The community pharmacist's list of the patient's other medicines, reviewed at the hospital."""

    __tablename__ = "medication_reconciliation"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    # [{"name", "dose", "frequency", "note"}]; empty when the patient takes nothing else.
    lines = db.Column(db.JSON, nullable=False)
    status = db.Column(db.String(10), nullable=False, default=ReconciliationStatus.SUBMITTED)
    submitted_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    submitted_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    reviewed_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    reviewed_at = db.Column(UTCDateTime())
    review_note = db.Column(db.Text)

    submitted_by = db.relationship("Professional", foreign_keys=[submitted_by_id])
    reviewed_by = db.relationship("Professional", foreign_keys=[reviewed_by_id])

    __table_args__ = (
        db.Index("ix_medication_reconciliation_patient_status", "patient_id", "status"),
        db.CheckConstraint("status IN ('submitted', 'reviewed')", name="status"),
        db.CheckConstraint("status <> 'reviewed' OR (reviewed_by_id IS NOT NULL AND review_note IS NOT NULL)",
                           name="reviewed"),
    )

    def __repr__(self) -> str:
        return f"<MedicationReconciliation {self.id} {self.status}>"


class Visit(db.Model):
    """A GP's or community nurse's visit: vitals, side effects seen and graded, what was done."""

    __tablename__ = "community_visit"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False, index=True)
    visit_on = db.Column(db.Date, nullable=False)
    kind = db.Column(db.String(10), nullable=False)
    systolic = db.Column(db.Integer)
    diastolic = db.Column(db.Integer)
    temperature = db.Column(db.Float)
    weight_kg = db.Column(db.Float)
    # [{"symptom": code, "grade": 0-4}]
    side_effects = db.Column(db.JSON, nullable=False)
    actions_taken = db.Column(db.Text)
    concern = db.Column(db.Boolean, nullable=False, default=False)
    concern_urgent = db.Column(db.Boolean, nullable=False, default=False)
    concern_text = db.Column(db.Text)
    alert_id = db.Column(db.Integer, db.ForeignKey("alert.id"))
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    professional = db.relationship("Professional")

    __table_args__ = (
        # The same visit submitted twice (double tap, back button) is refused by the database too.
        db.UniqueConstraint("patient_id", "professional_id", "visit_on", "kind", name="uq_community_visit_once"),
        db.CheckConstraint("kind IN ('home', 'office', 'phone')", name="kind"),
        db.CheckConstraint("temperature IS NULL OR temperature BETWEEN 34 AND 43", name="temperature"),
        db.CheckConstraint("weight_kg IS NULL OR weight_kg BETWEEN 20 AND 300", name="weight"),
    )

    def __repr__(self) -> str:
        return f"<Visit {self.id} {self.kind}>"
