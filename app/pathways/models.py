"""Drugs, prescriptions with their dated events, and pathway enrolment with its history."""
from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l

from app.core.db import TimestampMixin, UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class Pathway(StrEnum):
    A = "A"  # first dispensing in a community pharmacy
    B = "B"  # hospital-pharmacy dispensing


class Sequence(StrEnum):
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"


class LeadTeam(StrEnum):
    HOSPITAL = "hospital"
    COMMUNITY = "community"


class EnrolmentStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(StrEnum):
    STOPPED = "stopped"
    PROGRESSION = "progression"
    DEATH = "death"
    TRANSFER = "transfer"
    OPT_OUT = "opt_out"


SEQUENCE_LABELS = {
    Sequence.S1: _l("S1 treatment start"),
    Sequence.S2: _l("S2 proximal follow-up"),
    Sequence.S3: _l("S3 distal follow-up"),
}
LEAD_LABELS = {LeadTeam.HOSPITAL: _l("Hospital"), LeadTeam.COMMUNITY: _l("Community")}
END_REASON_LABELS = {
    EndReason.STOPPED: _l("Treatment stopped"),
    EndReason.PROGRESSION: _l("Progression"),
    EndReason.DEATH: _l("Death"),
    EndReason.TRANSFER: _l("Transfer"),
    EndReason.OPT_OUT: _l("Patient opted out"),
}


class Drug(db.Model):
    """Catalogue entry (INN); default regimen and the symptoms to monitor."""

    __tablename__ = "drug"

    id = db.Column(db.Integer, primary_key=True)
    inn = db.Column(db.String(80), nullable=False, unique=True)
    drug_class = db.Column(db.String(80), nullable=False)
    default_dose = db.Column(db.String(80), nullable=False)
    default_frequency_per_day = db.Column(db.Integer, nullable=False, default=1)
    default_days_on = db.Column(db.Integer, nullable=False)
    default_days_off = db.Column(db.Integer, nullable=False, default=0)
    monitored_symptoms = db.Column(db.JSON, nullable=False, default=list)
    hospital_only = db.Column(db.Boolean, nullable=False, default=False)
    notes = db.Column(db.Text)
    active = db.Column(db.Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return f"<Drug {self.inn}>"

    @property
    def cycle_label(self) -> str:
        return cycle_label(self.default_days_on, self.default_days_off)


def cycle_label(days_on: int, days_off: int) -> str:
    if not days_off:
        return str(_l("continuous"))
    return str(_l("%(on)s days on / %(off)s off", on=days_on, off=days_off))


class Prescription(TimestampMixin, db.Model):
    __tablename__ = "prescription"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    drug_id = db.Column(db.Integer, db.ForeignKey("drug.id"), nullable=False, index=True)
    dose = db.Column(db.String(80), nullable=False)  # as prescribed, e.g. "1000 mg"
    frequency_per_day = db.Column(db.Integer, nullable=False)
    days_on = db.Column(db.Integer, nullable=False)
    days_off = db.Column(db.Integer, nullable=False, default=0)
    start_date = db.Column(db.Date, nullable=False)
    end_date = db.Column(db.Date)
    prescriber_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    recorded_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))

    drug = db.relationship("Drug")
    prescriber = db.relationship("Professional", foreign_keys=[prescriber_id])
    events = db.relationship(
        "PrescriptionEvent", back_populates="prescription",
        order_by="(PrescriptionEvent.effective_date, PrescriptionEvent.id)",
    )

    __table_args__ = (
        db.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),
        db.CheckConstraint("frequency_per_day BETWEEN 1 AND 6", name="frequency"),
        db.CheckConstraint("days_on >= 1 AND days_off >= 0", name="cycle"),
    )

    def __repr__(self) -> str:
        return f"<Prescription {self.id}>"

    @property
    def cycle_label(self) -> str:
        return cycle_label(self.days_on, self.days_off)

    def is_current(self, on) -> bool:
        return self.start_date <= on and (self.end_date is None or self.end_date >= on)


class PrescriptionEventKind(StrEnum):
    DOSE_CHANGE = "dose_change"
    INTERRUPTION = "interruption"
    RESUMPTION = "resumption"
    STOP = "stop"


PRESCRIPTION_EVENT_LABELS = {
    PrescriptionEventKind.DOSE_CHANGE: _l("Dose change"),
    PrescriptionEventKind.INTERRUPTION: _l("Interruption"),
    PrescriptionEventKind.RESUMPTION: _l("Resumption"),
    PrescriptionEventKind.STOP: _l("Stop"),
}


class PrescriptionEvent(db.Model):
    __tablename__ = "prescription_event"

    id = db.Column(db.Integer, primary_key=True)
    prescription_id = db.Column(db.Integer, db.ForeignKey("prescription.id"), nullable=False, index=True)
    kind = db.Column(db.String(20), nullable=False)
    effective_date = db.Column(db.Date, nullable=False)
    new_dose = db.Column(db.String(80))
    reason = db.Column(db.String(500), nullable=False)
    recorded_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    recorded_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    prescription = db.relationship("Prescription", back_populates="events")
    recorded_by = db.relationship("Professional")

    def __repr__(self) -> str:
        return f"<PrescriptionEvent {self.id} {self.kind}>"


class Enrolment(TimestampMixin, db.Model):
    """A patient's place in the Onco'Link pathway; at most one active per patient."""

    __tablename__ = "enrolment"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    pathway = db.Column(db.String(1), nullable=False)
    sequence = db.Column(db.String(2), nullable=False, index=True)
    lead_team = db.Column(db.String(12), nullable=False)
    status = db.Column(db.String(10), nullable=False, default=EnrolmentStatus.ACTIVE)
    started_on = db.Column(db.Date, nullable=False)
    sequence_started_on = db.Column(db.Date, nullable=False)
    # When the current sequence is due for review (S1: 1 cycle, S2: 3 cycles, S3: 6 months).
    review_due_on = db.Column(db.Date, index=True)
    ended_on = db.Column(db.Date)
    end_reason = db.Column(db.String(20))
    # Only one active enrolment per patient: NULL when ended (NULLs never collide).
    active_patient_id = db.Column(db.Integer, unique=True)

    patient = db.relationship("Patient", backref=db.backref("enrolments", order_by="Enrolment.started_on"))
    events = db.relationship("EnrolmentEvent", back_populates="enrolment", order_by="EnrolmentEvent.at")

    __table_args__ = (
        db.CheckConstraint("pathway IN ('A', 'B')", name="pathway"),
        db.CheckConstraint("sequence IN ('S1', 'S2', 'S3')", name="sequence"),
        db.CheckConstraint("lead_team IN ('hospital', 'community')", name="lead_team"),
    )

    def __repr__(self) -> str:
        return f"<Enrolment {self.id} {self.sequence}>"


SEQUENCE_CYCLES = {Sequence.S1: 1, Sequence.S2: 3}
S3_REVIEW_DAYS = 182
CONTINUOUS_CYCLE_DAYS = 28


def review_due(sequence: str, started: date, days_on: int | None, days_off: int | None) -> date:
    """The end of the sequence's funded period, when the team reviews it (renew, step, stop)."""
    if sequence == Sequence.S3:
        return started + timedelta(days=S3_REVIEW_DAYS)
    cycle = (days_on or 0) + (days_off or 0) if days_off else CONTINUOUS_CYCLE_DAYS
    return started + timedelta(days=SEQUENCE_CYCLES.get(sequence, 1) * cycle)


class EnrolmentEvent(db.Model):
    __tablename__ = "enrolment_event"

    id = db.Column(db.Integer, primary_key=True)
    enrolment_id = db.Column(db.Integer, db.ForeignKey("enrolment.id"), nullable=False, index=True)
    kind = db.Column(db.String(20), nullable=False)  # enrolled, sequence, lead, pathway, ended
    from_value = db.Column(db.String(40))
    to_value = db.Column(db.String(40))
    reason = db.Column(db.String(500), nullable=False)
    actor_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    enrolment = db.relationship("Enrolment", back_populates="events")
    actor = db.relationship("Professional")

    def __repr__(self) -> str:
        return f"<EnrolmentEvent {self.id} {self.kind}>"
