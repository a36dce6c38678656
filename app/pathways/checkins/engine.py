"""Taking one answer, by SMS or keypad: store it, act on red flags at once, move to the next item.

Shared by the SMS conversation and the voice call. Every function flushes; the webhook or job
that calls it commits once, so an alert is never committed without the answer that caused it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.core import audit
from app.core.time import utcnow
from app.extensions import db
from app.triage import grading
from app.triage import services as triage

from . import signals
from .models import Answer, CheckIn, CheckInStatus, QuestionnaireItem
from .parsing import matches, parse
from .questionnaire import current_treatment, items_by_code

OK, REASK, UNPARSED = "ok", "reask", "unparsed"


@dataclass
class Step:
    """What happened to one answer, for the channel to word its reply."""

    outcome: str  # ok | reask | unparsed
    item: QuestionnaireItem
    red_flag: bool = False
    next_item: QuestionnaireItem | None = None
    instruction: str | None = None  # a patient instruction from the grading rule (template key)

    @property
    def finished(self) -> bool:
        return self.outcome != REASK and self.next_item is None


def current_item(checkin: CheckIn) -> QuestionnaireItem | None:
    code = checkin.current_code
    return items_by_code([code]).get(code) if code else None


def _answer_row(checkin: CheckIn, code: str, source: str, now: datetime) -> Answer:
    answer = db.session.scalar(select(Answer).where(Answer.checkin_id == checkin.id, Answer.item_code == code))
    if answer is None:
        answer = Answer(checkin_id=checkin.id, patient_id=checkin.patient_id, item_code=code, raw_text="",
                        source=source, answered_at=now)
        db.session.add(answer)
    return answer


def _keep_text(answer: Answer, raw: str) -> None:
    """Free text is always kept: a re-asked item keeps both replies."""
    raw = raw or ""
    answer.raw_text = f"{answer.raw_text}\n{raw}" if answer.raw_text else raw


def _touch(checkin: CheckIn, now: datetime) -> None:
    checkin.last_activity_at = now
    if checkin.status != CheckInStatus.IN_PROGRESS:
        # A late answer (after the reminder, even after the check-in was closed) still counts.
        checkin.status = CheckInStatus.IN_PROGRESS
        checkin.closed_at = None


def advance(checkin: CheckIn, now: datetime) -> QuestionnaireItem | None:
    """Move to the next item; complete the check-in after the last one."""
    checkin.current_index += 1
    checkin.reask_count = 0
    nxt = current_item(checkin)
    if nxt is None:
        checkin.status = CheckInStatus.COMPLETED
        checkin.completed_at = checkin.closed_at = now
        db.session.flush()
        audit.record("checkin_completed", patient_id=checkin.patient_id, obj=checkin)
        signals.checkin_closed.send(checkin)
    return nxt


def _previous_grade(checkin: CheckIn, item_code: str) -> int | None:
    """The grade of the same item at the patient's previous check-in (for "worse by one grade")."""
    return db.session.scalar(
        select(Answer.grade).join(CheckIn, CheckIn.id == Answer.checkin_id).where(
            CheckIn.patient_id == checkin.patient_id, CheckIn.id != checkin.id,
            CheckIn.scheduled_at < checkin.scheduled_at, Answer.item_code == item_code,
            Answer.grade.is_not(None),
        ).order_by(CheckIn.scheduled_at.desc()).limit(1)
    )


def grade(checkin: CheckIn, item: QuestionnaireItem, value: Any, now: datetime) -> grading.Outcome:
    """Grade one answer with the most specific current rule for the patient's drugs and site."""
    treatment = current_treatment(checkin.patient_id, now.date())
    return grading.evaluate_answer(item_code=item.code, value=value, drug_inns=treatment.inns,
                                   site_id=checkin.patient.site_id, previous_grade=_previous_grade(checkin, item.code))


def _reason(item: QuestionnaireItem, outcome: grading.Outcome) -> str:
    """A clinical reason code: the band's own ("fever"), or item + grade ("diarrhoea_grade_2")."""
    generic = outcome.reason.startswith("grade") or outcome.reason in ("worsened", "band")
    return (f"{item.code}_{outcome.reason}" if generic else outcome.reason)[:60]


def _red_flag(checkin: CheckIn, item: QuestionnaireItem, answer: Answer, outcome: grading.Outcome) -> None:
    by_rule = outcome.severity == "red"
    triage.raise_alert(
        patient_id=checkin.patient_id, severity="red", source="checkin",
        reason_code=_reason(item, outcome) if by_rule else f"red_flag_{item.code}"[:60],
        summary=f"Red flag at check-in: {item.code} = {_shown(answer.value)}",
        detail={"item": item.code, "value": answer.value, "raw_text": answer.raw_text, "grade": outcome.grade,
                "rule": f"grading rule v{outcome.rule_version}" if by_rule else item.red_flag},
        checkin_id=checkin.id, rule_id=outcome.rule_id if by_rule else None,
    )


def _graded(checkin: CheckIn, item: QuestionnaireItem, answer: Answer, outcome: grading.Outcome) -> None:
    """Orange or yellow from the grading rule (red is handled at once by ``_red_flag``)."""
    if outcome.severity not in ("orange", "yellow"):
        return
    triage.raise_alert(
        patient_id=checkin.patient_id, severity=outcome.severity, source="checkin",
        reason_code=_reason(item, outcome),
        summary=f"Check-in: {item.code} = {_shown(answer.value)}"
                + (f" (grade {outcome.grade})" if outcome.grade is not None else "")
                + (" worse than last time" if outcome.worsened else ""),
        detail={"item": item.code, "value": answer.value, "raw_text": answer.raw_text, "grade": outcome.grade,
                "worsened": outcome.worsened, "rule": f"grading rule v{outcome.rule_version}",
                "instruction": outcome.instruction},
        checkin_id=checkin.id, rule_id=outcome.rule_id,
    )


def _finding(checkin: CheckIn, item: QuestionnaireItem, answer: Answer, graded: bool) -> None:
    """Questionnaire findings: a nurse task, and an alert only when no grading rule reported it."""
    finding = item.finding or {}
    if not matches(finding.get("rule"), answer.value):
        return
    reason = finding.get("reason_code") or f"finding_{item.code}"
    if finding.get("task"):
        triage.create_task(patient_id=checkin.patient_id, kind=finding["task"], reason_code=reason,
                           checkin_id=checkin.id)
    if finding.get("severity") and not graded:
        triage.raise_alert(
            patient_id=checkin.patient_id, severity=finding["severity"], source="checkin", reason_code=reason,
            summary=f"Check-in finding: {item.code} = {_shown(answer.value)}",
            detail={"item": item.code, "value": answer.value, "raw_text": answer.raw_text,
                    "rule": finding.get("rule")},
            checkin_id=checkin.id,
        )


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    return str(value)


def take_answer(checkin: CheckIn, raw: str, *, source: str, parsed: tuple[Any, bool] | None = None,
                now: datetime | None = None) -> Step | None:
    """Record ``raw`` as the answer to the current item (``parsed`` given by the keypad reader,
    else the text is parsed). Unclear once: re-ask; unclear twice: kept unparsed, next item."""
    now = now or utcnow()
    item = current_item(checkin)
    if item is None:
        return None
    value, ok = parsed if parsed is not None else parse(item.answer_type, raw, choices=item.choices)
    with db.session.no_autoflush:  # read first, then write the answer once, grade included
        answer = _answer_row(checkin, item.code, source, now)
        graded = grade(checkin, item, value, now) if ok else None
    _touch(checkin, now)
    _keep_text(answer, raw)
    answer.answered_at, answer.source = now, source
    instruction = None
    if ok:
        answer.value, answer.parsed = value, True
        answer.grade = graded.grade
        # The questionnaire's red flags are a floor that no grading rule can lower.
        answer.red_flag = matches(item.red_flag, value) or graded.severity == "red"
        db.session.flush()
        if answer.red_flag:
            _red_flag(checkin, item, answer, graded)
        else:
            _graded(checkin, item, answer, graded)
        _finding(checkin, item, answer, graded=graded.severity is not None)
        instruction = graded.instruction
        outcome = OK
    elif checkin.reask_count == 0:
        checkin.reask_count = 1
        answer.value, answer.parsed = None, False
        db.session.flush()
        _recorded(checkin, answer)
        return Step(REASK, item)
    else:
        answer.value, answer.parsed = None, False
        outcome = UNPARSED
    db.session.flush()
    _recorded(checkin, answer)
    return Step(outcome, item, red_flag=answer.red_flag, next_item=advance(checkin, now), instruction=instruction)


def skip_item(checkin: CheckIn, *, source: str, now: datetime | None = None) -> Step | None:
    """No answer to the current item (a call's second silence): keep it unanswered, go on."""
    now = now or utcnow()
    item = current_item(checkin)
    if item is None:
        return None
    _touch(checkin, now)
    answer = _answer_row(checkin, item.code, source, now)
    if not answer.parsed:
        answer.value = None
    db.session.flush()
    _recorded(checkin, answer)
    return Step(UNPARSED, item, next_item=advance(checkin, now))


def _recorded(checkin: CheckIn, answer: Answer) -> None:
    audit.record("checkin_answer", patient_id=checkin.patient_id, obj=answer,
                 detail={"item": answer.item_code, "parsed": answer.parsed})
    signals.answer_recorded.send(answer, checkin=checkin)
