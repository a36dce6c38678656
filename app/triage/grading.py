"""Grading rules as data: answers become grades and severities, per item, drug and site, versioned.

A rule holds ordered *bands*; the first band whose condition matches the answer gives the grade,
the severity and an optional instruction for the patient (e.g. pause the drug until the nurse
calls). A rule may also say what a worsening by one grade since the last check-in is worth.
Editing a rule never changes it: it writes the next version and the old one is superseded, so an
alert always points at the exact rule that fired. The most specific current rule wins:
site + drug, then site, then drug, then the default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from flask_babel import gettext as _
from sqlalchemy import select

from app.core import audit, batching
from app.core.db import UTCDateTime
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db

from .parsing import matches

SEVERITIES = ("red", "orange", "yellow", "info")
INSTRUCTIONS = ("pause_until_call",)


class GradingRule(db.Model):
    __tablename__ = "grading_rule"

    id = db.Column(db.Integer, primary_key=True)
    item_code = db.Column(db.String(40), nullable=False)
    drug_inn = db.Column(db.String(80))
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"))
    version = db.Column(db.Integer, nullable=False)
    bands = db.Column(db.JSON, nullable=False)
    worsening_severity = db.Column(db.String(10))
    note = db.Column(db.String(500))
    created_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    superseded_at = db.Column(UTCDateTime())

    __table_args__ = (
        db.UniqueConstraint("item_code", "drug_inn", "site_id", "version", name="uq_grading_rule_version"),
        db.Index("ix_grading_rule_item_current", "item_code", "superseded_at"),
    )

    def __repr__(self) -> str:
        return f"<GradingRule {self.item_code} {self.drug_inn or '*'} site={self.site_id or '*'} v{self.version}>"

    @property
    def scope_label(self) -> str:
        return f"{self.drug_inn or _('any drug')} · {('site %s' % self.site_id) if self.site_id else _('all sites')}"


@dataclass(frozen=True)
class Outcome:
    item_code: str
    grade: int | None
    severity: str | None       # None: nothing to report
    reason: str
    instruction: str | None
    rule_id: int | None
    rule_version: int | None
    worsened: bool = False


def _scale(red_from=3, orange_from=2, yellow_from=1, instruction_at_2=None):
    bands = [{"when": {"gte": red_from}, "grade": 3, "severity": "red", "reason": "grade_3"},
             {"when": {"gte": orange_from}, "grade": 2, "severity": "orange", "reason": "grade_2"},
             {"when": {"gte": yellow_from}, "grade": 1, "severity": "yellow", "reason": "grade_1"}]
    if instruction_at_2:
        bands[1]["instruction"] = instruction_at_2
        bands[1]["reason"] = "grade_2_interrupt"
    return bands


def _stools(instruction_at_2=None):
    """Diarrhoea as stools a day above usual (CTCAE v5: < 4 grade 1, 4-6 grade 2, >= 7 grade 3), or
    the fallback scale words ({"scale": n}) read as that grade."""
    bands = [
        {"when": {"any": [{"gte": 7}, {"key": "scale", "gte": 3}]}, "grade": 3, "severity": "red",
         "reason": "grade_3"},
        {"when": {"any": [{"gte": 4}, {"key": "scale", "gte": 2}]}, "grade": 2, "severity": "orange",
         "reason": "grade_2"},
        {"when": {"any": [{"gte": 1}, {"key": "scale", "gte": 1}]}, "grade": 1, "severity": "yellow",
         "reason": "grade_1"},
    ]
    if instruction_at_2:
        bands[1]["instruction"] = instruction_at_2
        bands[1]["reason"] = "grade_2_interrupt"
    return bands


YES = {"eq": True}
# Defaults from CLINICAL.md; every site reviews them with its clinicians.
DEFAULT_RULES: list[dict] = [
    dict(item_code="temperature", bands=[
        {"when": {"any": [{"gte": 38.0}, YES]}, "grade": None, "severity": "red", "reason": "fever"}],
        note="Fever >= 38 C on any drug: red (febrile neutropenia risk)."),
    dict(item_code="bleeding", bands=[{"when": YES, "grade": None, "severity": "red", "reason": "bleeding"}],
         note="Any bleeding: red."),
    dict(item_code="breathlessness", bands=[
        {"when": YES, "grade": None, "severity": "red", "reason": "chest_pain_or_breathlessness"}],
        note="Chest pain or breathlessness: red."),
    dict(item_code="vomiting", bands=[
        {"when": YES, "grade": None, "severity": "red", "reason": "vomiting_prevents_drug"}],
        note="Vomiting that prevents taking the drug: red."),
    dict(item_code="wants_call", bands=[
        {"when": {"eq": 2}, "grade": None, "severity": "red", "reason": "wants_to_speak_now"}],
        note="'I need to speak to someone now': red."),
    dict(item_code="dose_in_break", bands=[
        {"when": YES, "grade": None, "severity": "orange", "reason": "dose_during_off_week"}],
        note="A dose taken during the break is a safety finding."),
    dict(item_code="blood_pressure", bands=[
        {"when": {"any": [{"key": "systolic", "gte": 160}, {"key": "diastolic", "gte": 100}]},
         "grade": 3, "severity": "red", "reason": "hypertension_grade_3"},
        {"when": {"any": [{"key": "systolic", "gte": 140}, {"key": "diastolic", "gte": 90}]},
         "grade": 2, "severity": "orange", "reason": "hypertension_grade_2"}],
        worsening_severity="yellow", note="CTCAE v5 hypertension: 140-159/90-99 grade 2, >= 160/100 grade 3."),
    dict(item_code="diarrhoea", bands=_stools(), worsening_severity="yellow",
         note="CTCAE v5 diarrhoea, stools a day above usual: >= 7 red, 4-6 orange, 1-3 yellow."),
    *[dict(item_code=code, bands=_scale(), worsening_severity="yellow",
           note="Grade 3: red; grade 2: orange; grade 1 or worse by one grade: yellow.")
      for code in ("nausea", "mouth_sores", "hand_foot", "rash", "fatigue")],
    dict(item_code="diarrhoea", drug_inn="capecitabine", bands=_stools(instruction_at_2="pause_until_call"),
         worsening_severity="yellow",
         note="Capecitabine label: interrupt at grade 2 (4-6 stools a day above usual) until grade 0-1; "
              "the patient pauses until the nurse calls."),
    *[dict(item_code=code, drug_inn="capecitabine", bands=_scale(instruction_at_2="pause_until_call"),
           worsening_severity="yellow",
           note="Capecitabine label: interrupt at grade 2 until grade 0-1; the patient pauses until the nurse calls.")
      for code in ("hand_foot", "mouth_sores")],
]


def seed_grading_rules() -> int:
    """Add version 1 of each default rule that has no version yet (idempotent)."""
    existing = {(r.item_code, r.drug_inn, r.site_id) for r in db.session.scalars(select(GradingRule))}
    added = 0
    for spec in DEFAULT_RULES:
        key = (spec["item_code"], spec.get("drug_inn"), None)
        if key not in existing:
            db.session.add(GradingRule(version=1, worsening_severity=spec.get("worsening_severity"), **{
                k: v for k, v in spec.items() if k != "worsening_severity"}))
            added += 1
    db.session.flush()
    return added


def current_rules(item_codes: Iterable[str] | None = None) -> list[GradingRule]:
    if batching.in_scope():  # a batch job: the current rules once per transaction
        every = batching.cached("current_grading_rules", lambda: list(db.session.scalars(
            select(GradingRule).where(GradingRule.superseded_at.is_(None)))))
        if item_codes is None:
            return list(every)
        wanted = set(item_codes)
        return [rule for rule in every if rule.item_code in wanted]
    query = select(GradingRule).where(GradingRule.superseded_at.is_(None))
    if item_codes is not None:
        query = query.where(GradingRule.item_code.in_(list(item_codes)))
    return list(db.session.scalars(query))


def pick_rule(rules: Iterable[GradingRule], item_code: str, drug_inns: Iterable[str], site_id: int | None):
    """The most specific current rule for this item, the patient's drugs and site."""
    inns = set(drug_inns)
    best, best_score = None, -1
    for rule in rules:
        if rule.item_code != item_code or rule.superseded_at is not None:
            continue
        if rule.site_id is not None and rule.site_id != site_id:
            continue
        if rule.drug_inn is not None and rule.drug_inn not in inns:
            continue
        score = (2 if rule.site_id is not None else 0) + (1 if rule.drug_inn is not None else 0)
        if score > best_score:
            best, best_score = rule, score
    return best


def apply_bands(bands: list[dict], worsening_severity: str | None, item_code: str, value: Any,
                previous_grade: int | None, *, rule_id=None, rule_version=None) -> Outcome:
    """Pure: what ``bands`` say of ``value`` (and of the change since ``previous_grade``)."""
    for band in bands:
        if matches(band.get("when"), value):
            grade = band.get("grade")
            worsened = grade is not None and previous_grade is not None and grade > previous_grade
            return Outcome(item_code, grade, band.get("severity"), band.get("reason") or "band",
                           band.get("instruction"), rule_id, rule_version, worsened)
    grade = 0 if isinstance(value, int) and not isinstance(value, bool) and value == 0 else None
    return Outcome(item_code, grade, None, "none", None, rule_id, rule_version)


def _worsening(outcome: Outcome, worsening_severity: str | None, previous_grade: int | None) -> Outcome:
    """Worse by at least one grade since the last check-in is at least ``worsening_severity``."""
    if not worsening_severity or outcome.grade is None or previous_grade is None or outcome.grade <= previous_grade:
        return outcome
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    current = outcome.severity
    if current is None or rank[worsening_severity] < rank[current]:
        return Outcome(outcome.item_code, outcome.grade, worsening_severity, "worsened", outcome.instruction,
                       outcome.rule_id, outcome.rule_version, True)
    return Outcome(outcome.item_code, outcome.grade, current, outcome.reason, outcome.instruction,
                   outcome.rule_id, outcome.rule_version, True)


def evaluate(rule: GradingRule | None, item_code: str, value: Any, previous_grade: int | None) -> Outcome:
    if rule is None:
        return Outcome(item_code, None, None, "no_rule", None, None, None)
    outcome = apply_bands(rule.bands, rule.worsening_severity, item_code, value, previous_grade,
                          rule_id=rule.id, rule_version=rule.version)
    return _worsening(outcome, rule.worsening_severity, previous_grade)


def evaluate_answer(*, item_code: str, value: Any, drug_inns: Iterable[str], site_id: int | None,
                    previous_grade: int | None) -> Outcome:
    rule = pick_rule(current_rules([item_code]), item_code, drug_inns, site_id)
    return evaluate(rule, item_code, value, previous_grade)


def validate_bands(bands: Any, worsening_severity: str | None) -> list[dict]:
    errors = []
    if not isinstance(bands, list) or not bands:
        raise ValidationFailed({"bands": _("Give at least one band as a JSON list.")})
    for i, band in enumerate(bands, 1):
        if not isinstance(band, dict) or not isinstance(band.get("when"), dict):
            errors.append(_("Band %(n)s needs a 'when' condition.", n=i))
            continue
        if band.get("severity") not in SEVERITIES:
            errors.append(_("Band %(n)s: severity must be red, orange, yellow or info.", n=i))
        if band.get("grade") is not None and band.get("grade") not in (0, 1, 2, 3, 4):
            errors.append(_("Band %(n)s: grade must be 0 to 4 or empty.", n=i))
        if band.get("instruction") not in (None, *INSTRUCTIONS):
            errors.append(_("Band %(n)s: unknown instruction.", n=i))
        unknown = set(band) - {"when", "grade", "severity", "reason", "instruction"}
        if unknown:
            errors.append(_("Band %(n)s: unknown keys %(keys)s.", n=i, keys=", ".join(sorted(unknown))))
    if worsening_severity not in (None, "", *SEVERITIES):
        raise ValidationFailed({"worsening_severity": _("Choose a severity or none.")})
    if errors:
        raise ValidationFailed({"bands": errors})
    return bands


def save_new_version(*, item_code: str, drug_inn: str | None, site_id: int | None, bands: list[dict],
                     worsening_severity: str | None, note: str, actor_id: int) -> GradingRule:
    """Write the next version of the rule for this scope; the current one is superseded, not changed."""
    validate_bands(bands, worsening_severity)
    if not (note or "").strip():
        raise ValidationFailed({"note": _("Say why the rule changes.")})
    scope = (GradingRule.item_code == item_code,
             GradingRule.drug_inn.is_(None) if drug_inn is None else GradingRule.drug_inn == drug_inn,
             GradingRule.site_id.is_(None) if site_id is None else GradingRule.site_id == site_id)
    versions = list(db.session.scalars(select(GradingRule).where(*scope).with_for_update()))
    now = utcnow()
    for old in versions:
        if old.superseded_at is None:
            old.superseded_at = now
    rule = GradingRule(item_code=item_code, drug_inn=drug_inn, site_id=site_id, bands=bands,
                       worsening_severity=worsening_severity or None, note=note.strip(), created_by_id=actor_id,
                       version=1 + max((v.version for v in versions), default=0), created_at=now)
    db.session.add(rule)
    db.session.flush()
    audit.record("grading_rule_saved", obj=rule, detail={"item": item_code, "version": rule.version})
    return rule
