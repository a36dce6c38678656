"""Read models of the pages: the patient page's adherence section and the dispensing form."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.care.access import can_view
from app.care.models import Patient, Professional
from app.core.roles import Role
from app.extensions import db
from app.pathways.models import Drug, Prescription

from .compute import PatientMeasures, evaluate
from .measures import Gap
from .models import AdherenceReport, AdherenceSnapshot, Assessment, Dispensing, Window
from .queries import load_inputs
from .services import dose_mg_on, settings

PHARMACISTS = frozenset({Role.COMMUNITY_PHARMACIST, Role.HOSPITAL_PHARMACIST})
REPORTERS = PHARMACISTS | {Role.COORDINATING_NURSE, Role.COMMUNITY_NURSE, Role.GP}
LIST_LIMIT = 24
PLOT_DAYS = 365
# Where a professional's assessment sits on the 0-100 axis of the plot.
ASSESSMENT_PLOT = {Assessment.GOOD: 100, Assessment.DOUBTFUL: 70, Assessment.POOR: 40}


@dataclass
class Panel:
    patient_id: int
    measures: PatientMeasures
    dispensings: list[Dispensing] = field(default_factory=list)
    more_dispensings: bool = False
    reports: list[AdherenceReport] = field(default_factory=list)
    plot: dict | None = None
    can_dispense: bool = False
    can_report: bool = False
    report_form: object | None = None  # set by the page (a form needs the request)

    @property
    def gaps(self) -> list[tuple[str, Gap]]:
        return [(d.inn, g) for d in self.measures.drugs for g in d.supply.gaps][-10:]

    @property
    def has_data(self) -> bool:
        return bool(self.dispensings or self.reports or self.plot
                    or any(r.answers for r in self.measures.self_reports.values()))

    @property
    def visible(self) -> bool:
        return self.has_data or self.can_dispense or self.can_report


def patient_panel(patient_id: int, viewer: Professional, today: date) -> Panel | None:
    """The adherence section of a patient the viewer may see (None otherwise)."""
    patient = db.session.get(Patient, patient_id)
    if patient is None or not can_view(viewer, patient):
        return None
    measures = evaluate(load_inputs([patient_id], today)[patient_id], today, settings())
    rows = list(db.session.scalars(
        select(Dispensing).where(Dispensing.patient_id == patient_id)
        .options(selectinload(Dispensing.drug), selectinload(Dispensing.organisation),
                 selectinload(Dispensing.recorded_by))
        .order_by(Dispensing.dispensed_on.desc(), Dispensing.id.desc()).limit(LIST_LIMIT + 1)))
    reports = list(db.session.scalars(
        select(AdherenceReport).where(AdherenceReport.patient_id == patient_id)
        .options(selectinload(AdherenceReport.professional))
        .order_by(AdherenceReport.reported_on.desc(), AdherenceReport.id.desc()).limit(LIST_LIMIT)))
    snapshots = list(db.session.execute(
        select(AdherenceSnapshot.computed_on, AdherenceSnapshot.pdc, AdherenceSnapshot.self_report)
        .where(AdherenceSnapshot.patient_id == patient_id, AdherenceSnapshot.window == Window.DAYS_30,
               AdherenceSnapshot.computed_on >= today - timedelta(days=PLOT_DAYS))
        .order_by(AdherenceSnapshot.computed_on)))
    return Panel(patient_id=patient_id, measures=measures, dispensings=rows[:LIST_LIMIT],
                 more_dispensings=len(rows) > LIST_LIMIT, reports=reports,
                 plot=_plot(snapshots, reports, today), can_dispense=viewer.role in PHARMACISTS,
                 can_report=viewer.role in REPORTERS)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _plot(snapshots, reports: list[AdherenceReport], today: date) -> dict | None:
    """Days and one series per source, percentages (None where a source says nothing that day)."""
    since = today - timedelta(days=PLOT_DAYS)
    assessed = {}
    for r in sorted(reports, key=lambda r: (r.reported_on, r.id)):
        if r.reported_on >= since:
            assessed[r.reported_on] = ASSESSMENT_PLOT.get(r.assessment)
    days = sorted({s.computed_on for s in snapshots} | set(assessed))
    if not days:
        return None
    pdc = {s.computed_on: _pct(s.pdc) for s in snapshots}
    selfr = {s.computed_on: _pct(s.self_report) for s in snapshots}
    series = [
        {"code": "pdc", "label": _("Dispensing (PDC, 30 days)"), "values": [pdc.get(d) for d in days]},
        {"code": "self_report", "label": _("Self-report (30 days)"), "values": [selfr.get(d) for d in days]},
        {"code": "professional", "label": _("Professional's assessment"), "values": [assessed.get(d) for d in days],
         "points_only": True},
    ]
    series = [s for s in series if any(v is not None for v in s["values"])]
    if not series:
        return None
    return {"days": [d.isoformat() for d in days], "series": series,
            "assessment_levels": {str(v): k.value for k, v in ASSESSMENT_PLOT.items()}}


@dataclass
class FormContext:
    choices: list[tuple[int, str]]
    regimens: dict[str, dict]  # drug id -> what the page script needs to compute the days of supply
    default_drug_id: int | None
    default_strengths: dict[int, str]


def dispensing_form_context(patient_id: int, today: date) -> FormContext:
    """Drugs to choose from (the current prescriptions first) and what prefills the form."""
    rxs = [rx for rx in db.session.scalars(
        select(Prescription).where(Prescription.patient_id == patient_id)
        .options(selectinload(Prescription.events), selectinload(Prescription.drug))
        .order_by(Prescription.start_date, Prescription.id)) if rx.is_current(today)]
    current = {rx.drug_id: rx for rx in rxs}
    drugs = list(db.session.scalars(select(Drug).where(Drug.active.is_(True)).order_by(Drug.inn)))
    last_strength = dict(db.session.execute(
        select(Dispensing.drug_id, Dispensing.strength).where(Dispensing.patient_id == patient_id)
        .order_by(Dispensing.dispensed_on, Dispensing.id)).all())
    choices, regimens, strengths = [], {}, {}
    for drug in sorted(drugs, key=lambda d: (d.id not in current, d.inn)):
        rx = current.get(drug.id)
        label = f"{drug.inn} — {rx.dose}, {rx.cycle_label}" if rx else f"{drug.inn} ({_('not prescribed')})"
        choices.append((drug.id, label))
        regimens[str(drug.id)] = {
            "frequency": rx.frequency_per_day if rx else drug.default_frequency_per_day,
            "dose_mg": dose_mg_on(rx, today) if rx else None,
            "days_on": rx.days_on if rx else drug.default_days_on,
            "days_off": rx.days_off if rx else drug.default_days_off,
            "prescribed": rx is not None,
        }
        if drug.id in last_strength:
            strengths[drug.id] = last_strength[drug.id]
        elif rx is not None:
            strengths[drug.id] = rx.dose
    return FormContext(choices=choices, regimens=regimens, default_drug_id=rxs[-1].drug_id if rxs else None,
                       default_strengths=strengths)
