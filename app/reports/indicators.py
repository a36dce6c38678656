"""The experiment's indicators, for a set of sites, in a fixed number of queries.

- patients included: active enrolments per site and sequence;
- weekly check-in completion: (completed + partial) / due, per week (Monday 00:00 UTC) over the
  last 12 weeks, a check-in being due once its scheduled time has passed, unless cancelled;
- alerts per 100 due check-ins and median minutes to acknowledgement per severity (same weeks);
- adherence: latest 90-day PDC snapshot of each actively followed patient, in buckets;
- emergency referrals (alerts with a "referred" action, same weeks) and patients hospitalised now.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import case, distinct, func, select

from app.care.models import Patient, PatientStatus, Site
from app.extensions import db
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.models import Enrolment
from app.triage.models import Alert, AlertAction, Severity

from .months import utc_midnight

WEEKS = 12
PDC_BUCKETS = ("lt80", "80to90", "ge90", "none")


@dataclass
class Week:
    start: date
    due: int = 0
    answered: int = 0

    @property
    def rate(self) -> float | None:
        return self.answered / self.due if self.due else None


@dataclass
class Indicators:
    weeks: list[Week]
    included: list[tuple[str, str, int]] = field(default_factory=list)  # site code, sequence, patients
    alerts: int = 0
    alerts_by_severity: dict[str, int] = field(default_factory=dict)
    median_ack_minutes: dict[str, float | None] = field(default_factory=dict)
    adherence: dict[str, int] = field(default_factory=dict)
    referred: int = 0
    hospitalised: int = 0

    @property
    def due(self) -> int:
        return sum(w.due for w in self.weeks)

    @property
    def alerts_per_100(self) -> float | None:
        return round(100 * self.alerts / self.due, 1) if self.due else None

    def plot(self) -> dict:
        return {"weeks": [w.start.isoformat() for w in self.weeks],
                "rates": [None if w.rate is None else round(100 * w.rate, 1) for w in self.weeks]}


def week_starts(now: datetime) -> list[datetime]:
    """Mondays 00:00 UTC of the last ``WEEKS`` weeks, the current one last."""
    monday = utc_midnight(now.date() - timedelta(days=now.weekday()))
    return [monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]


def compute_indicators(site_ids: Iterable[int] | None, now: datetime) -> Indicators:
    sites = None if site_ids is None else list(site_ids)

    def scoped(stmt, column):
        return stmt if sites is None else stmt.where(column.in_(sites))

    starts = week_starts(now)
    result = Indicators(weeks=[Week(s.date()) for s in starts])
    window_start, window_end = starts[0], min(now, starts[-1] + timedelta(weeks=1))

    included = scoped(select(Site.code, Enrolment.sequence, func.count(Enrolment.id))
                      .join(Patient, Patient.id == Enrolment.patient_id).join(Site, Site.id == Patient.site_id)
                      .where(Enrolment.active_patient_id.is_not(None))
                      .group_by(Site.code, Enrolment.sequence).order_by(Site.code, Enrolment.sequence), Site.id)
    result.included = [(code, seq, n) for code, seq, n in db.session.execute(included)]

    bucket = case(*[(CheckIn.scheduled_at < s + timedelta(weeks=1), i) for i, s in enumerate(starts)], else_=-1)
    answered = func.sum(case((CheckIn.status.in_([CheckInStatus.COMPLETED, CheckInStatus.PARTIAL]), 1), else_=0))
    weekly = scoped(select(bucket, func.count(CheckIn.id), answered)
                    .join(Patient, Patient.id == CheckIn.patient_id)
                    .where(CheckIn.scheduled_at >= window_start, CheckIn.scheduled_at <= window_end,
                           CheckIn.status != CheckInStatus.CANCELLED)
                    .group_by(bucket), Patient.site_id)
    for i, due, done in db.session.execute(weekly):
        if 0 <= i < WEEKS:
            result.weeks[i].due, result.weeks[i].answered = due, int(done or 0)

    alerts = scoped(select(Alert.severity, Alert.created_at, Alert.acknowledged_at)
                    .where(Alert.created_at >= window_start, Alert.created_at <= window_end), Alert.site_id)
    delays: dict[str, list[float]] = {str(s): [] for s in Severity}
    for severity, created, acknowledged in db.session.execute(alerts):
        result.alerts += 1
        result.alerts_by_severity[severity] = result.alerts_by_severity.get(severity, 0) + 1
        if acknowledged is not None:
            delays.setdefault(severity, []).append((acknowledged - created).total_seconds() / 60)
    result.median_ack_minutes = {s: (round(median(v), 1) if v else None) for s, v in delays.items()}

    referred = scoped(select(func.count(distinct(Alert.id))).join(AlertAction, AlertAction.alert_id == Alert.id)
                      .where(AlertAction.kind == "referred", Alert.created_at >= window_start,
                             Alert.created_at <= window_end), Alert.site_id)
    result.referred = db.session.scalar(referred) or 0
    hospitalised = scoped(select(func.count(Patient.id)).where(Patient.status == PatientStatus.HOSPITALISED),
                          Patient.site_id)
    result.hospitalised = db.session.scalar(hospitalised) or 0
    result.adherence = _adherence(scoped)
    return result


def _adherence(scoped) -> dict[str, int]:
    try:
        from app.adherence.models import AdherenceSnapshot
    except ImportError:  # the adherence module is optional
        return {}
    latest = (select(AdherenceSnapshot.patient_id, func.max(AdherenceSnapshot.computed_on).label("day"))
              .where(AdherenceSnapshot.window == "90").group_by(AdherenceSnapshot.patient_id).subquery())
    pdc = AdherenceSnapshot.pdc
    label = case((pdc.is_(None), "none"), (pdc < 0.8, "lt80"), (pdc < 0.9, "80to90"), else_="ge90")
    stmt = scoped(select(label, func.count(AdherenceSnapshot.id))
                  .join(latest, (latest.c.patient_id == AdherenceSnapshot.patient_id)
                        & (latest.c.day == AdherenceSnapshot.computed_on))
                  .join(Patient, Patient.id == AdherenceSnapshot.patient_id)
                  .join(Enrolment, Enrolment.active_patient_id == Patient.id)
                  .where(AdherenceSnapshot.window == "90").group_by(label), Patient.site_id)
    counts = dict.fromkeys(PDC_BUCKETS, 0)
    counts.update({k: n for k, n in db.session.execute(stmt)})
    return counts


def indicators_csv(ind: Indicators) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(("indicator", "key", "value"))
    for code, seq, n in ind.included:
        w.writerow(("patients_included", f"{code}/{seq}", n))
    for week in ind.weeks:
        w.writerow(("checkins_due", week.start.isoformat(), week.due))
        w.writerow(("checkins_answered", week.start.isoformat(), week.answered))
    w.writerow(("alerts", "all", ind.alerts))
    w.writerow(("alerts_per_100_checkins", "all", "" if ind.alerts_per_100 is None else ind.alerts_per_100))
    for severity, minutes in ind.median_ack_minutes.items():
        w.writerow(("median_ack_minutes", severity, "" if minutes is None else minutes))
    for key, n in ind.adherence.items():
        w.writerow(("pdc_90d", key, n))
    w.writerow(("alerts_referred", "all", ind.referred))
    w.writerow(("patients_hospitalised", "now", ind.hospitalised))
    return out.getvalue()
