"""Questionnaire items (data, editable), check-ins (one per patient and follow-up period) and answers."""
from __future__ import annotations

from enum import StrEnum

from sqlalchemy import event, select

from app.core.db import TimestampMixin, UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class AnswerType(StrEnum):
    YES_NO = "yes_no"
    SCALE_0_3 = "scale_0_3"
    COUNT = "count"
    TEMPERATURE = "temperature"
    BLOOD_PRESSURE = "blood_pressure"
    CHOICE = "choice"
    STOOLS = "stools"  # stools a day above usual (PRO-CTCAE anchor of diarrhoea)


class Phase(StrEnum):
    ANY = "any"
    ON = "on"  # on-treatment days of the cycle
    OFF = "off"  # break days of the cycle, or an interruption


class CheckInStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"  # first question sent / call placed, no answer yet
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"  # closed with some answers
    NO_RESPONSE = "no_response"  # closed with no answer at all
    CANCELLED = "cancelled"


#: Statuses of a check-in that is still waiting for the patient.
OPEN_STATUSES = (CheckInStatus.SENT, CheckInStatus.IN_PROGRESS)
#: Closed statuses a late answer may still reopen (within the next period).
LATE_STATUSES = (CheckInStatus.NO_RESPONSE, CheckInStatus.PARTIAL)


class AnswerSource(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    NURSE_CALL = "nurse_call"


class QuestionnaireItem(TimestampMixin, db.Model):
    """One question. Texts are patient texts (fr + en): no drug name, no diagnosis.

    ``drugs``: list of INNs the item is for, or null for every drug. ``symptom``: asked only
    when the drug monitors that symptom (``Drug.monitored_symptoms``), or null for always.
    ``universal``: a red-flag question asked of every patient at every check-in, whatever the
    drug, the phase or the channel (CLINICAL.md): never dropped by the drug or the phase.
    ``red_flag``: rule (see ``parsing.matches``) that makes an answer a red alert at once.
    ``finding``: a non-red rule with its severity and reason code, e.g. a dose taken during
    the break week -> orange.
    """

    __tablename__ = "questionnaire_item"

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    position = db.Column(db.Integer, nullable=False)
    text_fr = db.Column(db.String(400), nullable=False)
    text_en = db.Column(db.String(400), nullable=False)
    example_fr = db.Column(db.String(60), nullable=False)
    example_en = db.Column(db.String(60), nullable=False)
    answer_type = db.Column(db.String(20), nullable=False)
    choices = db.Column(db.JSON)  # choice items: {"0": ["non", "no"], ...}
    drugs = db.Column(db.JSON)
    symptom = db.Column(db.String(40))
    phase = db.Column(db.String(3), nullable=False, default=Phase.ANY)
    red_flag = db.Column(db.JSON)
    finding = db.Column(db.JSON)
    active = db.Column(db.Boolean, nullable=False, default=True)
    universal = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())

    __table_args__ = (
        db.CheckConstraint(
            "answer_type IN ('yes_no', 'scale_0_3', 'count', 'temperature', 'blood_pressure', 'choice', 'stools')",
            name="answer_type",
        ),
        db.CheckConstraint("phase IN ('any', 'on', 'off')", name="phase"),
    )

    def __repr__(self) -> str:
        return f"<QuestionnaireItem {self.code}>"

    def text(self, language: str) -> str:
        return self.text_en if language == "en" else self.text_fr

    def example(self, language: str) -> str:
        return self.example_en if language == "en" else self.example_fr


class CheckIn(TimestampMixin, db.Model):
    """One check-in per patient and follow-up period (``period_key``: local ISO week of the slot)."""

    __tablename__ = "checkin"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False)
    period_key = db.Column(db.String(20), nullable=False)
    sequence = db.Column(db.String(2), nullable=False)
    scheduled_at = db.Column(UTCDateTime(), nullable=False)
    # End of the period (the next slot): unanswered check-ins are closed then.
    closes_at = db.Column(UTCDateTime(), nullable=False)
    channel = db.Column(db.String(10), nullable=False)
    status = db.Column(db.String(20), nullable=False, default=CheckInStatus.SCHEDULED)
    cancel_reason = db.Column(db.String(40))
    item_codes = db.Column(db.JSON)  # planned when the check-in starts
    phase = db.Column(db.String(3))  # cycle phase on the day it started
    current_index = db.Column(db.Integer, nullable=False, default=0)
    reask_count = db.Column(db.Integer, nullable=False, default=0)
    started_at = db.Column(UTCDateTime())
    completed_at = db.Column(UTCDateTime())
    closed_at = db.Column(UTCDateTime())
    last_activity_at = db.Column(UTCDateTime())  # start, or the patient's last answer
    # When the current question was put to the patient: a text that arrived before it answers an
    # earlier question (a late answer), never this one.
    asked_at = db.Column(UTCDateTime())
    reminder_sent_at = db.Column(UTCDateTime())
    call_task_created_at = db.Column(UTCDateTime())
    no_response_alert_at = db.Column(UTCDateTime())
    call_attempts = db.Column(db.Integer, nullable=False, default=0)
    next_call_at = db.Column(UTCDateTime())
    call_answered_at = db.Column(UTCDateTime())

    patient = db.relationship("Patient")
    answers = db.relationship("Answer", back_populates="checkin", order_by="Answer.id")

    __table_args__ = (
        db.UniqueConstraint("patient_id", "period_key", name="uq_checkin_patient_period"),
        db.Index("ix_checkin_status_scheduled_at", "status", "scheduled_at"),
        db.Index("ix_checkin_patient_scheduled_at", "patient_id", "scheduled_at"),
        db.CheckConstraint(
            "status IN ('scheduled', 'sent', 'in_progress', 'completed', 'partial', 'no_response', 'cancelled')",
            name="status",
        ),
        db.CheckConstraint("channel IN ('sms', 'voice')", name="channel"),
    )

    def __repr__(self) -> str:
        return f"<CheckIn {self.id} {self.period_key} {self.status}>"

    @property
    def items_left(self) -> int:
        return max(0, len(self.item_codes or []) - self.current_index)

    @property
    def current_code(self) -> str | None:
        codes = self.item_codes or []
        return codes[self.current_index] if self.current_index < len(codes) else None


class Answer(db.Model):
    """The patient's answer to one item: the raw text is always kept, parsed or not."""

    __tablename__ = "checkin_answer"

    id = db.Column(db.Integer, primary_key=True)
    checkin_id = db.Column(db.Integer, db.ForeignKey("checkin.id"), nullable=False)
    # The check-in's patient, copied on insert (a check-in never changes patient): the nightly
    # adherence job aggregates every patient's answers without joining millions of check-ins.
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    item_code = db.Column(db.String(40), nullable=False)
    raw_text = db.Column(db.Text, nullable=False, default="")
    value = db.Column(db.JSON)
    parsed = db.Column(db.Boolean, nullable=False, default=False)
    red_flag = db.Column(db.Boolean, nullable=False, default=False)
    grade = db.Column(db.Integer)  # CTCAE-like grade given by the grading rule, when it gives one
    answered_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    source = db.Column(db.String(12), nullable=False)

    checkin = db.relationship("CheckIn", back_populates="answers")

    __table_args__ = (
        db.UniqueConstraint("checkin_id", "item_code", name="uq_checkin_answer_item"),
        db.CheckConstraint("source IN ('sms', 'voice', 'nurse_call')", name="source"),
    )

    def __repr__(self) -> str:
        return f"<Answer {self.id} {self.item_code} parsed={self.parsed}>"


@event.listens_for(Answer, "before_insert")
def _copy_patient(mapper, connection, target: Answer) -> None:
    """An answer created without its patient takes the check-in's."""
    if target.patient_id is None:
        target.patient_id = connection.scalar(select(CheckIn.patient_id).where(CheckIn.id == target.checkin_id))
