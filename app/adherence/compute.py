"""From a patient's rows to the measures: the bridge between the database and ``measures``.

The rows come in bulk (``queries.load_inputs``); everything here is plain Python, so the same
code serves the nightly job, the recompute after a dispensing or an answer, and the page.

Units: a drug's course counts in milligrams when every prescription of it gives its dose in
mg, otherwise on a relative scale (the starting dose is 1.0). A dispensing's supply is its
``days_supply`` (on-days, as the pharmacist confirmed it) times the need per on-day in force
the day it was dispensed; a later dose change changes how fast that stock goes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from .findings import DrugMeasure, Finding, Settings, findings
from .measures import (
    START,
    Coverage,
    SelfReport,
    SupplyReport,
    coverage_by_ordinal,
    self_report_from_bounds,
)
from .models import Window
from .regimen import (
    DOSE_CHANGE,
    OPEN_END,
    Course,
    RxEvent,
    RxSpec,
    Segment,
    build_course,
    dose_amounts,
    on_until,
    parse_mg,
)

if TYPE_CHECKING:
    from .bulk import SimpleCoverage

WINDOW_DAYS = {Window.DAYS_30: 30, Window.DAYS_90: 90}
WINDOWS = (Window.DAYS_30.value, Window.DAYS_90.value, Window.START.value)
WINDOW_LENGTHS = tuple(WINDOW_DAYS.values())


class RxRow(NamedTuple):
    id: int
    drug_id: int
    inn: str
    dose: str
    frequency_per_day: int
    days_on: int
    days_off: int
    start_date: date
    end_date: date | None


class EventRow(NamedTuple):
    prescription_id: int
    kind: str
    effective_date: date
    new_dose: str | None


class DispensingRow(NamedTuple):
    drug_id: int
    dispensed_on: date
    days_supply: int


class AnswerStats(NamedTuple):
    """Aggregates of the parsed ``doses_missed`` answers in one window (see ``queries``); days
    are UTC calendar days."""

    answers: int = 0
    missed: int = 0
    first: date | None = None
    last: date | None = None
    previous: date | None = None  # the day of the last answer before the window
    doses_in_break: int = 0  # "yes" answers to ``dose_in_break`` in the window


@dataclass
class PatientInputs:
    prescriptions: list[RxRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    dispensings: list[DispensingRow] = field(default_factory=list)
    answers: dict[str, AnswerStats] = field(default_factory=dict)
    reports: list[tuple[date, str]] = field(default_factory=list)  # (reported_on, assessment), in order


@dataclass
class DrugResult:
    drug_id: int
    inn: str
    course: Course
    supply: SupplyReport
    last_supply_days: float


@dataclass
class PatientMeasures:
    as_of: date
    drugs: list[DrugResult] = field(default_factory=list)
    courses: list[Course] = field(default_factory=list)  # every drug's, dispensed or not
    self_reports: dict[str, SelfReport] = field(default_factory=dict)
    professional: dict[str, str | None] = field(default_factory=dict)
    doses_in_break: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def worst(self, window: str) -> DrugResult | None:
        measured = [d for d in self.drugs if d.supply.pdc(window) is not None]
        return min(measured, key=lambda d: d.supply.pdc(window), default=None)

    def pdc(self, window: str) -> float | None:
        worst = self.worst(window)
        return worst.supply.pdc(window) if worst else None

    def self_report(self, window: str) -> float | None:
        report = self.self_reports.get(window)
        return report.ratio if report else None

    def snapshot_rows(self, patient_id: int, now: datetime) -> list[tuple]:
        """The three snapshot rows (30 days, 90 days, since start), as tuples in the order of
        ``SNAPSHOT_COLUMNS``; a window's dispensing measure is the worst drug's."""
        drugs, single = self.drugs, len(self.drugs) == 1
        rows = []
        for window in WINDOWS:
            if single:
                cov = drugs[0].supply.windows.get(window)
                if cov is not None and cov.needed <= 0:
                    cov = None
            else:
                worst = self.worst(window) if drugs else None
                cov = worst.supply.windows.get(window) if worst else None
            report = self.self_reports.get(window)
            rows.append((patient_id, self.as_of, window, cov.pdc if cov else None, cov.needed if cov else 0,
                         cov.covered if cov else 0, report.ratio if report else None,
                         self.professional.get(window), now))
        return rows


SNAPSHOT_COLUMNS = ("patient_id", "computed_on", "window", "pdc", "needed_days", "covered_days", "self_report",
                    "professional_assessment", "updated_at")


def _simple_course(rx: RxRow) -> Course:
    """The course of one prescription without dated events (the common case), without the
    general machinery."""
    units = rx.frequency_per_day * (parse_mg(rx.dose) or 1.0)
    return Course((Segment(rx.start_date, rx.end_date, rx.start_date, rx.days_on, rx.days_off, units,
                           rx.frequency_per_day),))


def _course_for(rxs: list[RxRow], events: dict[int, list[EventRow]]) -> Course:
    if len(rxs) == 1 and not events.get(rxs[0].id):
        return _simple_course(rxs[0])
    in_mg = all(parse_mg(_starting_dose(rx, events.get(rx.id, []))) is not None for rx in rxs)
    specs = []
    for rx in rxs:
        evs = events.get(rx.id, [])
        changes = [e for e in evs if e.kind == DOSE_CHANGE]
        initial = _starting_dose(rx, evs) if in_mg else None
        start_amount, amounts = dose_amounts(initial, [e.new_dose or "" for e in changes])
        after = dict(zip((id(e) for e in changes), amounts))
        specs.append(RxSpec(
            start=rx.start_date, end=rx.end_date, days_on=rx.days_on, days_off=rx.days_off,
            intakes_per_day=rx.frequency_per_day, units_per_day=rx.frequency_per_day * start_amount,
            events=tuple(RxEvent(e.effective_date, e.kind,
                                 rx.frequency_per_day * after[id(e)] if id(e) in after else None)
                         for e in evs)))
    return build_course(specs)


def _units_by_day(course: Course, rows: list[DispensingRow]) -> dict[int, float]:
    """Supplies in the course's units, summed per day (ordinal): days of supply x the need per
    on-day in force the day each was dispensed."""
    out: dict[int, float] = {}
    single = len(course.segments) == 1
    rate = course.rate_at(rows[0].dispensed_on) if single else 0.0
    for row in rows:
        key = row.dispensed_on.toordinal()
        units = row.days_supply * (rate if single else course.rate_at(row.dispensed_on))
        out[key] = out.get(key, 0.0) + units
    return out


def _starting_dose(rx: RxRow, events: list[EventRow]) -> str | None:
    """The prescription's first dose. Recording a dose change overwrites ``Prescription.dose``, so
    when it equals the last change's dose the starting dose is unknown."""
    changes = [e for e in events if e.kind == DOSE_CHANGE and e.new_dose]
    if changes and changes[-1].new_dose == rx.dose:
        return None
    return rx.dose


def evaluate(inputs: PatientInputs, as_of: date, settings: Settings,
             simple: dict[int, SimpleCoverage] | None = None) -> PatientMeasures:
    """Every measure of one patient on ``as_of``, and the findings they give. ``simple``: the
    dispensing measures already computed in SQL per drug (``bulk``), instead of the rows."""
    return finish(measure_supply(inputs, as_of, simple), inputs.answers, inputs.reports, settings)


def measure_supply(inputs: PatientInputs, as_of: date,
                   simple: dict[int, SimpleCoverage] | None = None) -> PatientMeasures:
    """The courses and the dispensing measures (first half of ``evaluate``)."""
    out = PatientMeasures(as_of=as_of)
    events: dict[int, list[EventRow]] = {}
    for ev in inputs.events:
        events.setdefault(ev.prescription_id, []).append(ev)
    by_drug: dict[int, list[RxRow]] = {}
    for rx in inputs.prescriptions:
        by_drug.setdefault(rx.drug_id, []).append(rx)
    supplies: dict[int, list[DispensingRow]] = {}
    for row in inputs.dispensings:
        supplies.setdefault(row.drug_id, []).append(row)
    for drug_id, rxs in by_drug.items():
        course = _course_for(rxs, events)
        out.courses.append(course)
        if simple is not None:
            measured = simple.get(drug_id)
            if measured is not None:
                out.drugs.append(DrugResult(drug_id, rxs[0].inn, course, _report_from(measured, course),
                                            float(measured.last_supply_days)))
            continue
        rows = supplies.get(drug_id)
        if not rows:
            continue
        report = coverage_by_ordinal(course, _units_by_day(course, rows), as_of, WINDOW_LENGTHS)
        # The last supply measured: on the latest day with a dispensing, up to the last day measured.
        last_day = max((r.dispensed_on for r in rows if report.until and r.dispensed_on <= report.until), default=None)
        out.drugs.append(DrugResult(drug_id, rxs[0].inn, course, report,
                                    float(sum(r.days_supply for r in rows if r.dispensed_on == last_day))))
    return out


def simple_night(patient_id: int, prescriptions: list[RxRow], measured: dict[int, SimpleCoverage],
                 answers: dict[str, AnswerStats], reports: list[tuple[date, str]] | tuple, as_of: date,
                 settings: Settings, now: datetime) -> tuple[list[tuple], list[Finding]]:
    """The snapshot rows and the findings of a patient whose every drug has one prescription and
    no dated event, from the dispensing measures computed in SQL (``bulk.simple_coverage``, per
    drug): what ``snapshot_rows`` and ``findings`` of ``evaluate`` give, in integer arithmetic
    on the rows, without building the courses and reports (the nightly job's path for nearly
    every patient; ``tests/test_adherence_bulk.py`` holds it to ``evaluate``)."""
    drugs = [(rx, m) for rx in prescriptions if (m := measured.get(rx.drug_id)) is not None]
    lookback = timedelta(days=settings.first_answer_lookback_days)
    rows, ratios = [], {}
    for window, days in _WINDOW_STARTS:
        worst = None  # (pdc, needed, covered) of the worst measured drug
        for _rx, m in drugs:
            needed = m.needed[window]
            if needed > 0:
                pdc = min(1.0, m.covered[window] / needed)
                if worst is None or pdc < worst[0]:
                    worst = (pdc, needed, m.covered[window])
        ratio = None
        stats = answers.get(window)
        if stats is not None and stats.answers and stats.first is not None and stats.last is not None:
            since = stats.previous if stats.previous is not None else stats.first - lookback
            expected = _simple_intakes(prescriptions, since.toordinal(), stats.last.toordinal() - 1)
            if expected > 0:
                ratio = max(0.0, 1.0 - max(0, stats.missed) / expected)
        ratios[window] = ratio
        professional = None
        if reports:
            since_day = as_of - timedelta(days=days - 1) if days else date.min
            for day, assessment in reports:
                if since_day <= day <= as_of:
                    professional = assessment
        rows.append((patient_id, as_of, window, worst[0] if worst else None, worst[1] if worst else 0,
                     worst[2] if worst else 0, ratio, professional, now))
    window = settings.alert_window
    measures = []
    for rx, m in drugs:
        needed = m.needed[window]
        measures.append(DrugMeasure(
            inn=rx.inn, pdc=min(1.0, m.covered[window] / needed) if needed > 0 else None, needed_days=needed,
            stock_days=float(m.stock_days), last_supply_days=float(m.last_supply_days),
            ongoing=rx.end_date is None or rx.end_date >= as_of))
    return rows, findings(measures, ratios.get(window), settings)


def _simple_intakes(prescriptions: list[RxRow], lo: int, hi: int) -> int:
    """``Course.intakes`` over the ordinals [lo, hi] of one-segment courses, summed."""
    total = 0
    if hi < lo:
        return 0
    for rx in prescriptions:
        start = rx.start_date.toordinal()
        a, b = max(lo, start), min(hi, rx.end_date.toordinal() if rx.end_date else OPEN_END)
        if b >= a and rx.frequency_per_day > 0:
            length = rx.days_on + rx.days_off
            total += (on_until(b, start, rx.days_on, length)
                      - on_until(a - 1, start, rx.days_on, length)) * rx.frequency_per_day
    return total


_WINDOW_STARTS = [(w, WINDOW_DAYS.get(Window(w))) for w in WINDOWS]


def finish(out: PatientMeasures, answers: dict[str, AnswerStats], reports: list[tuple[date, str]],
           settings: Settings) -> PatientMeasures:
    """Self-report, professional's assessment and findings (second half of ``evaluate``)."""
    as_of, empty = out.as_of, AnswerStats()
    for window, days in _WINDOW_STARTS:
        stats = answers.get(window) or empty
        out.self_reports[window] = self_report_from_bounds(
            out.courses, missed=stats.missed, answers=stats.answers, first_answer=stats.first,
            last_answer=stats.last, previous_answer=stats.previous,
            lookback_days=settings.first_answer_lookback_days)
        out.doses_in_break[window] = stats.doses_in_break
        if reports:
            since = as_of - timedelta(days=days - 1) if days else date.min
            latest = [a for d, a in reports if since <= d <= as_of]
            out.professional[window] = latest[-1] if latest else None
        else:
            out.professional[window] = None
    out.findings = findings(_drug_measures(out, settings.alert_window), out.self_report(settings.alert_window),
                            settings)
    return out


_WINDOW_KEYS = tuple((str(window.value), days) for window, days in WINDOW_DAYS.items())


def _report_from(m: SimpleCoverage, course: Course) -> SupplyReport:
    index = max(m.first_supply, m.start)
    windows = {START: Coverage(date.fromordinal(index), m.needed["start"], m.covered["start"])}
    for key, days in _WINDOW_KEYS:
        windows[key] = Coverage(date.fromordinal(max(index, m.until - days + 1)), m.needed[key], m.covered[key])
    until = date.fromordinal(m.until)
    return SupplyReport(index_date=date.fromordinal(index), until=until, windows=windows,
                        stock_units=m.stock_days * course.rate_at(until), stock_days=float(m.stock_days))


def _drug_measures(out: PatientMeasures, window: str) -> list[DrugMeasure]:
    result = []
    for d in out.drugs:
        cov = d.supply.windows.get(window)
        ongoing = d.course.end is None or d.course.end >= out.as_of
        result.append(DrugMeasure(
            inn=d.inn, pdc=cov.pdc if cov else None, needed_days=cov.needed if cov else 0,
            stock_days=d.supply.stock_days, last_supply_days=d.last_supply_days, ongoing=ongoing))
    return result


__all__ = [
    "SNAPSHOT_COLUMNS",
    "START",
    "WINDOWS",
    "AnswerStats",
    "DispensingRow",
    "EventRow",
    "PatientInputs",
    "PatientMeasures",
    "RxRow",
    "evaluate",
    "simple_night",
]
