"""A nurse's phone follow-up recorded with the same questionnaire items: it counts as the week's
check-in (answers with source ``nurse_call``, graded and alerted exactly like an SMS answer)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.care.models import Patient, Professional
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Enrolment
from app.triage.parsing import parse

from .engine import skip_item, take_answer
from .models import OPEN_STATUSES, AnswerSource, CheckIn, CheckInStatus, QuestionnaireItem
from .planning import period_key, zone
from .questionnaire import active_items, current_treatment, items_by_code, select_items


@dataclass(frozen=True)
class CallResult:
    checkin: CheckIn
    red_flags: list[str]
    instructions: list[str]


def items_for_call(patient: Patient) -> list[QuestionnaireItem]:
    """The items this patient would be asked today, in order."""
    local_day = utcnow().astimezone(zone(patient.timezone)).date()
    codes = select_items(active_items(), current_treatment(patient.id, local_day))
    found = items_by_code(codes)
    return [found[c] for c in codes if c in found]


def check_answers(items: list[QuestionnaireItem], answers: dict[str, str]) -> None:
    """Every filled answer must be understood; the nurse corrects it on the spot."""
    errors = {}
    for item in items:
        raw = (answers.get(item.code) or "").strip()
        if raw:
            _value, ok = parse(item.answer_type, raw, choices=item.choices)
            if not ok:
                errors[item.code] = _("Not understood; e.g. %(example)s", example=item.example("fr"))
    if errors:
        raise ValidationFailed(errors)


def _open_or_new_checkin(patient: Patient, codes: list[str], now) -> CheckIn:
    checkin = db.session.scalar(
        select(CheckIn).where(CheckIn.patient_id == patient.id, CheckIn.status.in_(list(OPEN_STATUSES)))
        .order_by(CheckIn.scheduled_at.desc()).limit(1).with_for_update()
    )
    if checkin is not None:
        return checkin
    key = period_key(now.astimezone(zone(patient.timezone)).date())
    taken = db.session.scalar(select(func.count()).select_from(CheckIn).where(
        CheckIn.patient_id == patient.id, CheckIn.period_key.like(f"{key}%")))
    sequence = db.session.scalar(select(Enrolment.sequence).where(Enrolment.active_patient_id == patient.id))
    checkin = CheckIn(patient_id=patient.id, period_key=key if not taken else f"{key}-call{taken}",
                      sequence=sequence or "S2", scheduled_at=now, closes_at=now + timedelta(days=7),
                      channel=patient.channel, status=CheckInStatus.SENT, started_at=now, last_activity_at=now,
                      item_codes=codes, current_index=0)
    db.session.add(checkin)
    db.session.flush()
    return checkin


def record_nurse_call(patient: Patient, answers: dict[str, str], *, actor: Professional) -> CallResult:
    items = items_for_call(patient)
    if not any((answers.get(i.code) or "").strip() for i in items):
        raise ValidationFailed({"form": _("Record at least one answer.")})
    check_answers(items, answers)
    now = utcnow()
    checkin = _open_or_new_checkin(patient, [i.code for i in items], now)
    if not checkin.item_codes:
        checkin.item_codes = [i.code for i in items]
    red_flags, instructions = [], []
    while checkin.current_code is not None:
        raw = (answers.get(checkin.current_code) or "").strip()
        step = take_answer(checkin, raw, source=AnswerSource.NURSE_CALL, now=now, several=False) if raw else \
            skip_item(checkin, source=AnswerSource.NURSE_CALL, now=now)
        if step is None:
            break
        if step.red_flag:
            red_flags.append(step.item.code)
        instructions += step.instructions
    if checkin.status != CheckInStatus.COMPLETED:
        checkin.status, checkin.completed_at, checkin.closed_at = CheckInStatus.COMPLETED, now, now
    audit.record("nurse_call", patient_id=patient.id, obj=checkin,
                 detail={"answered": sorted(k for k, v in answers.items() if (v or "").strip()),
                         "by": actor.id})
    return CallResult(checkin, red_flags, instructions)
