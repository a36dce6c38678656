"""Read side for the pages: a patient's check-in history, the non-responders list (constant query count)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from app.care.access import patient_scope
from app.care.models import Patient, Professional
from app.core.time import utcnow
from app.extensions import db

from .models import Answer, CheckIn, CheckInStatus, QuestionnaireItem


@dataclass(frozen=True)
class AnswerRow:
    item_code: str
    question: str
    raw_text: str
    value: Any
    parsed: bool
    red_flag: bool
    source: str
    answered_at: datetime


@dataclass(frozen=True)
class CheckInRow:
    checkin: CheckIn
    answers: list[AnswerRow] = field(default_factory=list)

    @property
    def unparsed(self) -> list[AnswerRow]:
        return [a for a in self.answers if not a.parsed]


def checkin_history(patient_id: int, *, language: str = "fr", limit: int = 20) -> list[CheckInRow]:
    """The patient's latest check-ins (newest first) with their answers in question order: 3 queries."""
    checkins = list(db.session.scalars(
        select(CheckIn).where(CheckIn.patient_id == patient_id, CheckIn.status != CheckInStatus.SCHEDULED)
        .order_by(CheckIn.scheduled_at.desc()).limit(limit)
    ))
    if not checkins:
        return []
    answers = db.session.scalars(select(Answer).where(Answer.checkin_id.in_([c.id for c in checkins]))).all()
    items = {i.code: i for i in db.session.scalars(select(QuestionnaireItem))}
    by_checkin: dict[int, list[Answer]] = {}
    for answer in answers:
        by_checkin.setdefault(answer.checkin_id, []).append(answer)
    rows = []
    for checkin in checkins:
        order = {code: n for n, code in enumerate(checkin.item_codes or [])}
        listed = sorted(by_checkin.get(checkin.id, []), key=lambda a: (order.get(a.item_code, 999), a.id))
        rows.append(CheckInRow(checkin, [
            AnswerRow(a.item_code, items[a.item_code].text(language) if a.item_code in items else a.item_code,
                      a.raw_text, a.value, a.parsed, a.red_flag, a.source, a.answered_at)
            for a in listed
        ]))
    return rows


@dataclass(frozen=True)
class NonResponderRow:
    patient: Patient
    checkin: CheckIn
    waiting_since: datetime


def non_responders(prof: Professional, *, now: datetime | None = None, days: int = 14,
                   waiting_hours: int | None = None, limit: int = 200) -> list[NonResponderRow]:
    """Patients ``prof`` may see whose check-in got no answer at all: still waiting (sent) for more
    than ``waiting_hours`` (default: the reminder delay) or closed as no_response within ``days``;
    longest waiting first. One query."""
    now = now or utcnow()
    if waiting_hours is None:
        waiting_hours = current_app.config.get("CHECKIN_REMINDER_HOURS", 24)
    rows = db.session.execute(
        select(Patient, CheckIn)
        .join(CheckIn, CheckIn.patient_id == Patient.id)
        .where(
            patient_scope(prof),
            or_((CheckIn.status == CheckInStatus.SENT) & (CheckIn.started_at <= now - timedelta(hours=waiting_hours)),
                (CheckIn.status == CheckInStatus.NO_RESPONSE) & (CheckIn.closed_at >= now - timedelta(days=days))),
        )
        .order_by(CheckIn.started_at, CheckIn.id)
        .limit(limit)
    ).all()
    return [NonResponderRow(patient, checkin, checkin.started_at or checkin.scheduled_at) for patient, checkin in rows]


def messages_by_checkin(checkin_ids: list[int]) -> dict[int, list]:
    """Texts and calls of these check-ins (sent, received, replied) with their delivery status: 1 query."""
    from app.notifications.models import Message

    if not checkin_ids:
        return {}
    refs = {f"checkin:{i}": i for i in checkin_ids}
    rows = db.session.scalars(
        select(Message).where(Message.ref.in_(list(refs))).order_by(Message.created_at, Message.id)
    )
    grouped: dict[int, list] = {}
    for message in rows:
        grouped.setdefault(refs[message.ref], []).append(message)
    return grouped
