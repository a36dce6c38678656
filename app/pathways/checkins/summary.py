"""Pre-consultation summary: everything a patient reported since a date, for the oncologist."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.triage.models import Alert

from .models import Answer, CheckIn, QuestionnaireItem

SCALE_TYPES = ("scale_0_3",)


@dataclass
class Summary:
    since: date
    checkins: list[CheckIn]
    alerts: list[Alert]
    items: dict[str, QuestionnaireItem]
    # item code -> [(ISO date, grade)] for the plot
    series: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    temperatures: list[tuple[str, float]] = field(default_factory=list)
    doses_missed: list[tuple[str, int]] = field(default_factory=list)
    completed: int = 0
    unanswered: int = 0

    @property
    def total_missed(self) -> int:
        return sum(n for _, n in self.doses_missed)

    def plot_data(self, language: str) -> dict:
        """Shape for the browser plot: shared x axis (days), one series per symptom."""
        days = sorted({d for points in self.series.values() for d, _ in points})
        index = {d: i for i, d in enumerate(days)}
        series = []
        for code, points in sorted(self.series.items()):
            values = [None] * len(days)
            for d, grade in points:
                values[index[d]] = grade
            label = code
            item = self.items.get(code)
            if item is not None:
                label = _short_label(item, language)
            series.append({"code": code, "label": label, "values": values})
        return {"days": days, "series": series}


def _short_label(item: QuestionnaireItem, language: str) -> str:
    labels = {
        "diarrhoea": ("Diarrhée", "Diarrhoea"), "nausea": ("Nausées", "Nausea"),
        "mouth_sores": ("Bouche", "Mouth"), "hand_foot": ("Mains-pieds", "Hand-foot"),
        "rash": ("Peau", "Rash"), "fatigue": ("Fatigue", "Fatigue"),
    }
    fr, en = labels.get(item.code, (item.code, item.code))
    return en if language == "en" else fr


def build(patient_id: int, since: date) -> Summary:
    start = datetime.combine(since, time.min, tzinfo=timezone.utc)
    checkins = list(db.session.scalars(
        select(CheckIn).where(CheckIn.patient_id == patient_id, CheckIn.scheduled_at >= start)
        .options(selectinload(CheckIn.answers)).order_by(CheckIn.scheduled_at)
    ))
    alerts = list(db.session.scalars(
        select(Alert).where(Alert.patient_id == patient_id, Alert.created_at >= start)
        .options(selectinload(Alert.actions)).order_by(Alert.created_at)
    ))
    items = {i.code: i for i in db.session.scalars(select(QuestionnaireItem))}
    summary = Summary(since=since, checkins=checkins, alerts=alerts, items=items)
    for checkin in checkins:
        if checkin.status in ("completed", "partial"):
            summary.completed += 1
        elif checkin.status == "no_response":
            summary.unanswered += 1
        day = (checkin.started_at or checkin.scheduled_at).date().isoformat()
        for answer in checkin.answers:
            _collect(summary, items.get(answer.item_code), answer, day)
    return summary


def _stool_grade(value) -> int | None:
    """CTCAE v5 grade of stools a day above usual (< 4: 1, 4-6: 2, >= 7: 3), or the scale words'."""
    if isinstance(value, dict) and isinstance(value.get("scale"), int):
        return value["scale"]
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 if value <= 0 else 1 if value < 4 else 2 if value < 7 else 3
    return None


def _collect(summary: Summary, item: QuestionnaireItem | None, answer: Answer, day: str) -> None:
    if item is None or not answer.parsed:
        return
    value = answer.value
    if item.answer_type == "stools":
        grade = answer.grade if answer.grade is not None else _stool_grade(value)
        if grade is not None:
            summary.series.setdefault(item.code, []).append((day, grade))
    elif item.answer_type in SCALE_TYPES and isinstance(value, int) and not isinstance(value, bool):
        summary.series.setdefault(item.code, []).append((day, value))
    elif item.code == "temperature" and isinstance(value, (int, float)) and not isinstance(value, bool):
        summary.temperatures.append((day, float(value)))
    elif item.code == "doses_missed" and isinstance(value, int) and not isinstance(value, bool):
        summary.doses_missed.append((day, value))
