"""Taking answers, by SMS, keypad or a nurse's call: hand the text to triage, record what it
understood, move the check-in on.

The questionnaire asks; triage judges (``app.triage.assessment``): this module only keeps the
conversation's state (the current question, the one re-ask, when each question was asked) and
writes the answers. Every function flushes; the webhook job, view or call that calls it commits
once, so an alert is never committed without the answer that caused it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.core import audit
from app.core.time import utcnow
from app.extensions import db
from app.triage import assessment as triage
from app.triage.assessment import ANSWERED, ASK_AGAIN, UNREADABLE, Question

from . import signals
from .models import Answer, CheckIn, CheckInStatus, QuestionnaireItem
from .questionnaire import current_treatment, items_by_code

OK, REASK, UNPARSED = "ok", "reask", "unparsed"


@dataclass
class Step:
    """What happened to one text, for the channel to word its reply."""

    outcome: str  # ok | reask | unparsed
    item: QuestionnaireItem
    red_flag: bool = False
    next_item: QuestionnaireItem | None = None
    instructions: list[str] = field(default_factory=list)  # template keys from the grading rules
    safety: str | None = None  # the safety reply template, when the text raised a red flag
    answered: list[str] = field(default_factory=list)  # the questions this text answered
    repeat: bool = False  # ask the same question again without counting a re-ask (after an emergency)

    @property
    def instruction(self) -> str | None:
        return self.instructions[0] if self.instructions else None

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
    checkin.asked_at = now
    nxt = current_item(checkin)
    if nxt is None:
        checkin.status = CheckInStatus.COMPLETED
        checkin.completed_at = checkin.closed_at = now
        db.session.flush()
        audit.record("checkin_completed", patient_id=checkin.patient_id, obj=checkin)
        signals.checkin_closed.send(checkin)
    return nxt


def _previous_grades(checkin: CheckIn, codes: list[str]) -> dict[str, int]:
    """The grade of each item at the patient's previous check-in (for "worse by one grade")."""
    rows = db.session.execute(
        select(Answer.item_code, Answer.grade).join(CheckIn, CheckIn.id == Answer.checkin_id).where(
            CheckIn.patient_id == checkin.patient_id, CheckIn.id != checkin.id,
            CheckIn.scheduled_at < checkin.scheduled_at, Answer.item_code.in_(codes),
            Answer.grade.is_not(None),
        ).order_by(CheckIn.scheduled_at.desc())).all()
    grades: dict[str, int] = {}
    for code, grade in rows:
        grades.setdefault(code, grade)  # the newest first
    return grades


def _max_doses(checkin: CheckIn, frequency: int) -> float:
    """Doses a patient can have missed in the period asked about: its days times doses a day."""
    days = max(1, round((checkin.closes_at - checkin.scheduled_at).total_seconds() / 86400))
    return days * max(1, frequency)


def _questions(checkin: CheckIn, index: int, now: datetime) -> tuple[list[QuestionnaireItem], list[Question],
                                                                     triage.Context]:
    """The pending item and the ones after it, as triage reads them, and the answer's context."""
    codes = list((checkin.item_codes or [])[index:])
    found = items_by_code(codes)
    items = [found[c] for c in codes if c in found]
    treatment = current_treatment(checkin.patient_id, now.date())
    bounds = {"doses_missed": _max_doses(checkin, treatment.max_frequency)}
    questions = [Question.of(item, max_value=bounds.get(item.code)) for item in items]
    ctx = triage.Context(patient_id=checkin.patient_id, site_id=checkin.patient.site_id, drug_inns=treatment.inns,
                         checkin_id=checkin.id, previous_grades=_previous_grades(checkin, codes))
    return items, questions, ctx


def _record(checkin: CheckIn, item: QuestionnaireItem, judged: triage.Judged | None, raw: str, source: str,
            now: datetime) -> Answer:
    with db.session.no_autoflush:
        answer = _answer_row(checkin, item.code, source, now)
    _keep_text(answer, raw)
    answer.answered_at, answer.source = now, source
    if judged is not None:
        answer.value, answer.parsed, answer.grade, answer.red_flag = judged.value, True, judged.grade, judged.red_flag
    elif not answer.parsed:
        answer.value, answer.parsed = None, False
    db.session.flush()
    _recorded(checkin, answer)
    return answer


def take_answer(checkin: CheckIn, raw: str, *, source: str, parsed: tuple[Any, bool] | None = None,
                now: datetime | None = None, several: bool = True) -> Step | None:
    """Take ``raw`` as the answer to the current item (``parsed``: the value the keypad gave).

    Triage reads and judges it; several answers in one text answer the next questions too. Not
    understood once: ask again; twice: kept unread, a nurse is asked to call, next item. A text
    that raised an emergency without answering is asked again without counting a re-ask.
    ``several``: the text may answer the next questions too (not for a form's field)."""
    now = now or utcnow()
    item = current_item(checkin)
    if item is None:
        return None
    items, questions, ctx = _questions(checkin, checkin.current_index, now)
    result = triage.assess_answer(questions if several else questions[:1], raw or "", ctx,
                                  final_attempt=checkin.reask_count >= 1, keyed=parsed)
    _touch(checkin, now)
    step = Step(OK, item, red_flag=result.red, safety=result.safety_reply, instructions=result.instructions)
    if result.outcome == ANSWERED:
        for judged in result.answers:
            current = current_item(checkin)
            _record(checkin, current, judged, raw, source, now)
            step.answered.append(current.code)
            step.next_item = advance(checkin, now)
        return step
    if result.outcome == ASK_AGAIN:
        _record(checkin, item, None, raw, source, now)
        if result.emergency_alert:
            step.repeat = True  # the safety reply first, then the same question again
        else:
            checkin.reask_count = 1
        step.outcome = REASK
        return step
    assert result.outcome == UNREADABLE
    _record(checkin, item, None, raw, source, now)
    step.outcome = UNPARSED
    step.next_item = advance(checkin, now)
    return step


def take_late_answer(checkin: CheckIn, index: int, raw: str, *, source: str, now: datetime | None = None) -> Step:
    """A text that answers an earlier question of the check-in (it arrived before the current
    question was asked, or names an earlier one: "Q2 oui"): kept on that question, judged, never
    stored as the answer to another one. The conversation stays where it is."""
    now = now or utcnow()
    items, questions, ctx = _questions(checkin, index, now)
    item = items[0]
    result = triage.assess_answer(questions[:1], raw or "", ctx, final_attempt=True)
    checkin.last_activity_at = now
    judged = result.answers[0] if result.outcome == ANSWERED else None
    answer = _record(checkin, item, judged, raw, source, now)
    audit.record("checkin_late_answer", patient_id=checkin.patient_id, obj=answer, detail={"item": item.code})
    return Step(OK if judged is not None else UNPARSED, item, red_flag=result.red, safety=result.safety_reply,
                instructions=result.instructions, answered=[item.code] if judged is not None else [])


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
