"""What a patient's answer or message means, clinically: one call per text, here and nowhere else.

The questionnaire (``app.pathways.checkins``) asks; triage judges. ``assess_answer`` takes the raw
text (or the keys pressed) given to the pending question of a check-in, with the questions that
follow it, and returns what it understood and what it did about it:

1. the emergency scan (``emergency.scan``) reads the text first, whatever the question;
2. the text is read as the answer to the pending question (strictly, then as several answers in
   order, then inside a sentence, helped by what the scan found: "j'ai saigne du nez" answers
   the bleeding question);
3. each value is graded with the most specific current grading rule (item x drug x site,
   versioned), the questionnaire's red flag being a floor no rule can lower, a worsening since
   the last check-in counted, the questionnaire's findings (a nurse task, an alert) applied;
4. alerts and tasks are raised in the caller's transaction: red pages the on-call team (one page
   per check-in, however many red answers it holds), a red hit of the scan that no answer
   explains is its own red alert quoting the text (for the team, never in an SMS), and a text
   that still cannot be read after the re-ask is an orange alert with a call task.

``assess_message`` does the same for a text outside any check-in (or from a patient who opted
out): red hits page, concerns are an orange alert for a nurse, anything else is kept as
information. Nothing here reads or writes the questionnaire's tables: the caller passes plain
values (``Question``, ``Context``) and records the answers itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from app.extensions import db

from . import emergency, grading
from . import services as alerts
from .models import Alert, AlertStatus, Severity
from .parsing import affirms, matches, parse, parse_strict, split_answers

ANSWERED, ASK_AGAIN, UNREADABLE = "answered", "ask_again", "unreadable"
# Concerns a text may carry besides its answer, whatever the question: never lost in the answer.
BEYOND_THE_QUESTION = frozenset({"stopped_treatment", "distress", "call_request"})
NOT_UNDERSTOOD = "answer_not_understood"
MAX_QUOTE = 1000


@dataclass(frozen=True)
class Question:
    """What triage needs of a check-in question (plain values, whatever stores them)."""

    code: str
    answer_type: str
    choices: dict | None = None
    red_flag: dict | None = None  # the questionnaire's own red flag: a floor under the grading rule
    finding: dict | None = None
    max_value: float | None = None  # plausibility (doses missed in the period, ...)

    @classmethod
    def of(cls, item: Any, *, max_value: float | None = None) -> Question:
        return cls(code=item.code, answer_type=item.answer_type, choices=item.choices, red_flag=item.red_flag,
                   finding=item.finding, max_value=max_value)

    @property
    def asks_red_flag(self) -> bool:
        return bool(self.red_flag)

    def spec(self) -> dict:
        return {"answer_type": self.answer_type, "choices": self.choices, "max_value": self.max_value}


@dataclass(frozen=True)
class Context:
    """Whose answer it is: the patient, their site and drugs, the check-in, the last grades."""

    patient_id: int
    site_id: int
    drug_inns: frozenset[str] = frozenset()
    checkin_id: int | None = None
    previous_grades: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Judged:
    """One understood answer and what the rules made of it."""

    question: Question
    value: Any
    grade: int | None
    severity: str | None
    red_flag: bool
    instruction: str | None


@dataclass
class Assessment:
    outcome: str  # answered | ask_again | unreadable
    answers: list[Judged] = field(default_factory=list)
    scan: emergency.Scan | None = None
    alert_ids: list[int] = field(default_factory=list)
    emergency_alert: bool = False  # a red hit of the scan that no answer explains
    concern: bool = False

    @property
    def red(self) -> bool:
        return self.emergency_alert or any(a.red_flag for a in self.answers)

    @property
    def safety_reply(self) -> str | None:
        """The safety template the patient must get now, or None."""
        if not self.red:
            return None
        key = self.scan.reply_key() if self.scan is not None else None
        return key or "safety"

    @property
    def instructions(self) -> list[str]:
        return [a.instruction for a in self.answers if a.instruction and not a.red_flag]


# --- reading -----------------------------------------------------------------------------------------

def _evidence(question: Question, scan: emergency.Scan | None) -> Any:
    """What the scan says of this question: "yes" for its red flag, a temperature, grade 3 in words."""
    if scan is None:
        return None
    said = scan.item_values()
    if question.code in said:
        return said[question.code]
    if question.answer_type in ("scale_0_3", "stools") and any(
            h.category in ("severe", "stools_severe") for h in scan.red_hits):
        return True
    category = {"bleeding": "bleeding", "breathlessness": "breathing", "vomiting": "vomiting_drug",
                "temperature": "fever"}.get(question.code)
    if category and not scan.hits and any(h.category == category and h.why == "negated" for h in scan.dropped):
        return False  # "pas de sang": denied in so many words
    return None


_ITEM_CATEGORY = {"bleeding": "bleeding", "breathlessness": "breathing", "vomiting": "vomiting_drug",
                  "temperature": "fever"}


def _only_said_well(question: Question, scan: emergency.Scan | None) -> bool:
    """The text speaks of what a red-flag question asks only to say it is fine: a phrase that
    looks like the symptom was set aside as well-being ("respiration ok") or the drug was kept
    long before the vomiting; and nothing in it reports the symptom."""
    category = _ITEM_CATEGORY.get(question.code)
    if scan is None or category is None or any(h.category == category for h in scan.hits):
        return False
    if category == "vomiting_drug" and scan.drug_kept:
        return True
    return any(h.category == category and h.why in ("excluded", "kept") for h in scan.dropped) and not any(
        h.category == category and h.why == "other" for h in scan.dropped)


def understand(questions: Sequence[Question], raw: str, scan: emergency.Scan | None) -> list[Any] | None:
    """The values ``raw`` gives to the first pending questions, in order, or None."""
    first = questions[0]
    value, ok = parse_strict(first.answer_type, raw, choices=first.choices, max_value=first.max_value)
    if ok:
        return [value]
    several = split_answers([q.spec() for q in questions], raw)
    if several:
        return several
    if first.answer_type == "yes_no" and _only_said_well(first, scan) and not affirms(raw):
        return [False]  # "breathing fine, walked 5k", "sick once, the tablet had been down 4 hours"
    value, ok = parse(first.answer_type, raw, choices=first.choices, max_value=first.max_value,
                      red_flag=first.asks_red_flag, evidence=_evidence(first, scan),
                      topic=scan is not None and first.code in scan.topics, topic_item=first.code)
    return [value] if ok else None


# --- judging -----------------------------------------------------------------------------------------

def judge(question: Question, value: Any, ctx: Context) -> tuple[Judged, grading.Outcome]:
    rule = grading.evaluate_answer(item_code=question.code, value=value, drug_inns=ctx.drug_inns,
                                   site_id=ctx.site_id, previous_grade=ctx.previous_grades.get(question.code))
    red = matches(question.red_flag, value) or rule.severity == Severity.RED
    severity = Severity.RED if red else rule.severity
    return Judged(question, value, rule.grade, severity, red, rule.instruction), rule


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    return str(value)


def _reason(code: str, outcome: grading.Outcome) -> str:
    """A clinical reason code: the band's own ("fever"), or item + grade ("diarrhoea_grade_2")."""
    generic = outcome.reason.startswith("grade") or outcome.reason in ("worsened", "band")
    return (f"{code}_{outcome.reason}" if generic else outcome.reason)[:60]


def _raise_for(judged: Judged, rule: grading.Outcome, raw: str, ctx: Context, scan: emergency.Scan | None) -> list[int]:
    q, value = judged.question, judged.value
    detail = {"item": q.code, "value": value, "raw_text": raw[:MAX_QUOTE], "grade": judged.grade}
    ids = []
    if judged.red_flag:
        by_rule = rule.severity == Severity.RED
        detail["rule"] = f"grading rule v{rule.rule_version}" if by_rule else q.red_flag
        if scan is not None and scan.hits:
            detail.update(lexicon=scan.version, hits=scan.describe())
        ids.append(alerts.raise_alert(
            patient_id=ctx.patient_id, severity=Severity.RED, source="checkin",
            reason_code=_reason(q.code, rule) if by_rule else f"red_flag_{q.code}"[:60],
            summary=f"Red flag at check-in: {q.code} = {_shown(value)}", detail=detail,
            checkin_id=ctx.checkin_id, rule_id=rule.rule_id if by_rule else None).id)
    elif rule.severity in (Severity.ORANGE, Severity.YELLOW):
        detail.update(worsened=rule.worsened, rule=f"grading rule v{rule.rule_version}",
                      instruction=rule.instruction)
        ids.append(alerts.raise_alert(
            patient_id=ctx.patient_id, severity=rule.severity, source="checkin", reason_code=_reason(q.code, rule),
            summary=f"Check-in: {q.code} = {_shown(value)}"
                    + (f" (grade {rule.grade})" if rule.grade is not None else "")
                    + (" worse than last time" if rule.worsened else ""),
            detail=detail, checkin_id=ctx.checkin_id, rule_id=rule.rule_id).id)
    finding = q.finding or {}
    if matches(finding.get("rule"), value):
        reason = finding.get("reason_code") or f"finding_{q.code}"
        if finding.get("task"):
            alerts.create_task(patient_id=ctx.patient_id, kind=finding["task"], reason_code=reason,
                               checkin_id=ctx.checkin_id)
        if finding.get("severity") and rule.severity is None and not judged.red_flag:
            ids.append(alerts.raise_alert(
                patient_id=ctx.patient_id, severity=finding["severity"], source="checkin", reason_code=reason,
                summary=f"Check-in finding: {q.code} = {_shown(value)}",
                detail={"item": q.code, "value": value, "raw_text": raw[:MAX_QUOTE], "rule": finding.get("rule")},
                checkin_id=ctx.checkin_id).id)
    return ids


def _explained(scan: emergency.Scan, answers: Sequence[Judged]) -> bool:
    """Every red hit of the scan is said by a red answer of this text ("oui j'ai saigne" to bleeding)."""
    items = {a.question.code for a in answers if a.red_flag}
    if not items:
        return False
    lex = emergency.lexicon()
    for hit in scan.red_hits:
        item = lex.categories[hit.category].get("item")
        if item not in items and not (hit.category in ("severe", "stools_severe") and answers[0].red_flag):
            return False
    return True


def emergency_alert(scan: emergency.Scan, raw: str, ctx: Context, *, item: str | None = None) -> Alert:
    """The red alert of a text the scan flags: what it found and the text, for the team only."""
    categories = scan.categories(Severity.RED)
    detail = {"text": raw[:MAX_QUOTE], "hits": scan.describe(), "lexicon": scan.version}
    if item:
        detail["item"] = item
    return alerts.raise_alert(
        patient_id=ctx.patient_id, severity=Severity.RED, source="message",
        reason_code=f"emergency_text_{categories[0]}"[:60] if categories else "emergency_text",
        summary="Emergency words in the patient's text: " + ", ".join(categories),
        detail=detail, checkin_id=ctx.checkin_id)


def concern_alert(raw: str, ctx: Context, *, reason: str, scan: emergency.Scan | None = None,
                  item: str | None = None, task: bool = True) -> Alert:
    """An orange alert for a nurse to read a text, with a call task; one per check-in and reason
    (a second text joins the first one's list)."""
    entry = {"text": raw[:MAX_QUOTE], **({"item": item} if item else {}),
             **({"hits": scan.describe(), "lexicon": scan.version} if scan is not None and scan.hits else {})}
    existing = None
    if ctx.checkin_id is not None:
        existing = db.session.scalar(select(Alert).where(
            Alert.patient_id == ctx.patient_id, Alert.checkin_id == ctx.checkin_id, Alert.reason_code == reason,
            Alert.status != AlertStatus.RESOLVED).limit(1))
    if existing is not None:
        detail = dict(existing.detail or {})
        detail["texts"] = [*detail.get("texts", []), entry][-20:]
        existing.detail = detail
        flag_modified(existing, "detail")
        alert = existing
    else:
        summary = {NOT_UNDERSTOOD: "Answer not understood after the re-ask: call the patient",
                   "message_concern": "The patient wrote about a problem: read and call",
                   "stopped_during_checkin": "The patient sent STOP during a check-in: may have stopped treatment",
                   "provider_opt_out": "The phone no longer receives our texts (opted out): call the patient",
                   }.get(reason, "Read the patient's text and call")
        alert = alerts.raise_alert(patient_id=ctx.patient_id, severity=Severity.ORANGE, source="message",
                                   reason_code=reason, summary=summary, detail={"texts": [entry]},
                                   checkin_id=ctx.checkin_id)
    if task:
        alerts.create_task(patient_id=ctx.patient_id, kind="call_patient", reason_code=reason,
                           checkin_id=ctx.checkin_id if ctx.checkin_id is not None else alert.id)
    return alert


# --- the two entry points ------------------------------------------------------------------------------

def assess_answer(questions: Sequence[Question], raw: str, ctx: Context, *, final_attempt: bool,
                  keyed: tuple[Any, bool] | None = None) -> Assessment:
    """Judge ``raw`` as the answer to ``questions[0]`` (and maybe the next ones), raise what it
    calls for, and say what the conversation must do: go on, ask again, or go on without it.

    ``keyed``: the value already read from a keypad (no scan: digits carry no words).
    ``final_attempt``: the question was already asked again once; not understood now means a
    nurse must call (orange alert with a call task and the text)."""
    raw = raw or ""
    scan = None if keyed is not None else emergency.scan(raw)
    if keyed is not None:
        values = [keyed[0]] if keyed[1] else None
    else:
        values = understand(questions, raw, scan)
    result = Assessment(ANSWERED if values else ASK_AGAIN, scan=scan)
    if values:
        for question, value in zip(questions, values):
            judged, rule = judge(question, value, ctx)
            result.answers.append(judged)
            result.alert_ids += _raise_for(judged, rule, raw, ctx, scan)
    if scan is not None and scan.red and not _explained(scan, result.answers):
        result.alert_ids.append(emergency_alert(scan, raw, ctx, item=questions[0].code).id)
        result.emergency_alert = True
    if values:
        beyond = set(scan.categories(Severity.ORANGE)) & BEYOND_THE_QUESTION if scan is not None else set()
        if questions[0].code == "wants_call":
            beyond.discard("call_request")  # that is the answer
        if beyond and not scan.red:
            # "toutes, j'ai arrete le traitement": the answer is read, and what else it says too
            result.alert_ids.append(concern_alert(raw, ctx, reason="message_concern", scan=scan,
                                                  item=questions[0].code).id)
            result.concern = True
        return result
    if scan is not None and scan.orange and not scan.red:
        result.alert_ids.append(concern_alert(raw, ctx, reason="message_concern", scan=scan,
                                              item=questions[0].code).id)
        result.concern = True
    if final_attempt and not result.emergency_alert:
        result.outcome = UNREADABLE
        result.alert_ids.append(concern_alert(raw, ctx, reason=NOT_UNDERSTOOD, scan=scan, item=questions[0].code).id)
    return result


def assess_message(raw: str, ctx: Context) -> Assessment:
    """A text outside any check-in: red hits page, concerns go to a nurse, the rest is kept."""
    raw = raw or ""
    scan = emergency.scan(raw)
    result = Assessment(ANSWERED, scan=scan)
    if scan.red:
        result.alert_ids.append(emergency_alert(scan, raw, ctx).id)
        result.emergency_alert = True
    elif scan.orange:
        result.alert_ids.append(concern_alert(raw, ctx, reason="message_concern", scan=scan).id)
        result.concern = True
    else:
        result.alert_ids.append(alerts.raise_alert(
            patient_id=ctx.patient_id, severity=Severity.INFO, source="message", reason_code="patient_message",
            summary="Message from the patient outside a check-in", detail={"text": raw[:MAX_QUOTE]}).id)
    return result


def keyword_alert(ctx: Context, *, reason: str, raw: str = "") -> Alert:
    """STOP during a check-in, or the provider reporting the number opted out: the patient may
    have stopped the treatment and nobody asks them any more: orange, with a call task."""
    return concern_alert(raw, ctx, reason=reason)
