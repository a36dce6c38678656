"""Dispensings, professionals' adherence reports and the nightly adherence snapshots."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class Assessment(StrEnum):
    GOOD = "good"
    DOUBTFUL = "doubtful"
    POOR = "poor"


ASSESSMENT_LABELS = {
    Assessment.GOOD: _l("Good"),
    Assessment.DOUBTFUL: _l("Doubtful"),
    Assessment.POOR: _l("Poor"),
}


class Window(StrEnum):
    DAYS_30 = "30"
    DAYS_90 = "90"
    START = "start"  # since the first recorded dispensing of the current treatment


class Dispensing(db.Model):
    """Units of a drug handed to the patient by a pharmacy on a day.

    ``days_supply`` counts on-days of the cycle (off-week days need nothing), computed from the
    prescription when recorded and editable by the pharmacist. Two rows with the same patient,
    pharmacy, drug, day and quantity are the same dispensing recorded twice, unless the second
    one was explicitly confirmed (``confirmed_duplicate``): a partial unique index guards it,
    whatever the number of web workers.
    """

    __tablename__ = "dispensing"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    prescription_id = db.Column(db.Integer, db.ForeignKey("prescription.id"), index=True)
    drug_id = db.Column(db.Integer, db.ForeignKey("drug.id"), nullable=False)
    strength = db.Column(db.String(40), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    days_supply = db.Column(db.Integer, nullable=False)
    dispensed_on = db.Column(db.Date, nullable=False)
    organisation_id = db.Column(db.Integer, db.ForeignKey("organisation.id"), nullable=False, index=True)
    recorded_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    confirmed_duplicate = db.Column(db.Boolean, nullable=False, default=False)
    note = db.Column(db.Text)

    drug = db.relationship("Drug")
    organisation = db.relationship("Organisation")
    recorded_by = db.relationship("Professional")

    __table_args__ = (
        db.CheckConstraint("quantity > 0", name="quantity"),
        db.CheckConstraint("days_supply BETWEEN 1 AND 366", name="days_supply"),
        db.Index("ix_dispensing_patient_drug_date", "patient_id", "drug_id", "dispensed_on"),
        db.Index("uq_dispensing_once", "patient_id", "organisation_id", "drug_id", "dispensed_on", "quantity",
                 unique=True, sqlite_where=db.text("NOT confirmed_duplicate"),
                 postgresql_where=db.text("NOT confirmed_duplicate")),
    )

    def __repr__(self) -> str:
        return f"<Dispensing {self.id} patient={self.patient_id}>"


class AdherenceReport(db.Model):
    """A pharmacist's, nurse's or GP's assessment of the patient's adherence."""

    __tablename__ = "adherence_report"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    reported_on = db.Column(db.Date, nullable=False)
    assessment = db.Column(db.String(10), nullable=False)
    doses_missed_estimate = db.Column(db.Integer)
    note = db.Column(db.Text)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    professional = db.relationship("Professional")

    __table_args__ = (
        db.CheckConstraint("assessment IN ('good', 'doubtful', 'poor')", name="assessment"),
        db.CheckConstraint("doses_missed_estimate IS NULL OR doses_missed_estimate >= 0", name="estimate"),
        db.Index("ix_adherence_report_patient_date", "patient_id", "reported_on"),
    )

    def __repr__(self) -> str:
        return f"<AdherenceReport {self.id} {self.assessment}>"


class AdherenceSnapshot(db.Model):
    """The three sources of one patient over one window, as computed on a day (one row per
    patient, day and window; recomputing the same day updates it)."""

    __tablename__ = "adherence_snapshot"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    computed_on = db.Column(db.Date, nullable=False)
    window = db.Column(db.String(5), nullable=False)
    pdc = db.Column(db.Float)  # 0..1, worst of the patient's drugs; None without dispensing
    needed_days = db.Column(db.Integer, nullable=False, default=0)
    covered_days = db.Column(db.Integer, nullable=False, default=0)
    self_report = db.Column(db.Float)  # 0..1; None without an answer in the window
    professional_assessment = db.Column(db.String(10))
    updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        db.UniqueConstraint("patient_id", "window", "computed_on", name="uq_adherence_snapshot_day"),
        db.CheckConstraint("\"window\" IN ('30', '90', 'start')", name="window"),
        db.CheckConstraint("pdc IS NULL OR (pdc >= 0 AND pdc <= 1)", name="pdc"),
        db.CheckConstraint("self_report IS NULL OR (self_report >= 0 AND self_report <= 1)", name="self_report"),
    )

    def __repr__(self) -> str:
        return f"<AdherenceSnapshot patient={self.patient_id} {self.computed_on} {self.window}>"
