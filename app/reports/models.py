"""Tariffs (amounts as dated data) and the payments ledger derived from the care record."""
from __future__ import annotations

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class Tariff(db.Model):
    """One version of the amount paid for an activity, valid over a date range.

    ``from_month`` lets one code carry a ladder: the amount applies from that month of follow-up
    (counted from the enrolment's start, month 1 = the start month) until a higher step.
    """

    __tablename__ = "tariff"

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False)
    recipient = db.Column(db.String(30), nullable=False)  # "site" or a professional role (gp, ...)
    amount_cents = db.Column(db.Integer, nullable=False)
    from_month = db.Column(db.Integer, nullable=False, default=1)
    valid_from = db.Column(db.Date, nullable=False)
    valid_to = db.Column(db.Date)
    is_default = db.Column(db.Boolean, nullable=False, default=False)  # seeded: to review
    note = db.Column(db.String(500), nullable=False, default="")
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    created_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))

    __table_args__ = (
        db.UniqueConstraint("code", "from_month", "valid_from", name="uq_tariff_version"),
        db.CheckConstraint("amount_cents >= 0", name="amount"),
        db.CheckConstraint("from_month >= 1", name="from_month"),
        db.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="dates"),
    )

    def __repr__(self) -> str:
        return f"<Tariff {self.code} m{self.from_month} {self.valid_from} {self.amount_cents}>"


class LedgerEntry(db.Model):
    """One payable activity. ``source_ref`` names what it was derived from: rebuilding a month
    inserts only the references not seen yet, so a rerun never pays twice."""

    __tablename__ = "ledger_entry"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    organisation_id = db.Column(db.Integer, db.ForeignKey("organisation.id"))
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), index=True)
    activity = db.Column(db.String(40), nullable=False)
    period = db.Column(db.String(7), nullable=False)  # "YYYY-MM"
    amount_cents = db.Column(db.Integer, nullable=False)
    tariff_id = db.Column(db.Integer, db.ForeignKey("tariff.id"))
    source_ref = db.Column(db.String(80), nullable=False, unique=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        db.Index("ix_ledger_entry_period_site", "period", "site_id"),
        db.CheckConstraint("amount_cents >= 0", name="amount"),
    )

    def __repr__(self) -> str:
        return f"<LedgerEntry {self.id} {self.activity} {self.period}>"
