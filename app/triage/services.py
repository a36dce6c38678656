"""Raising alerts and nurse tasks. Called in the same transaction as the event that causes them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import bindparam, insert, select, update

from app.care.models import Patient, Professional, Site
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db

from .models import Alert, AlertAction, AlertStatus, NurseTask, Severity, TaskStatus
from .out_of_hours import closed_on, should_page
from .paging import page_for_new_alert

# Default deadlines per severity (DESIGN.md section 8); sites will override them (issue 4).
DEFAULT_SLA = {
    Severity.RED: timedelta(minutes=30),
    Severity.ORANGE: timedelta(days=1),
    Severity.YELLOW: timedelta(days=7),
    Severity.INFO: timedelta(days=14),
}


def add_working_hours(start: datetime, hours: float, tz_name: str, day_start: int, day_end: int,
                      closed=frozenset()) -> datetime:
    """``start`` plus ``hours`` counted only Monday to Friday between ``day_start`` and ``day_end``
    in the site's time zone, skipping the days in ``closed`` (its public holidays)."""
    tz = ZoneInfo(tz_name or "Europe/Paris")
    local = start.astimezone(tz)
    left = timedelta(hours=hours)
    while True:
        opening = local.replace(hour=day_start, minute=0, second=0, microsecond=0)
        closing = opening + timedelta(hours=day_end - day_start)
        if local.weekday() >= 5 or local.date() in closed or local >= closing:
            local = (opening + timedelta(days=1))
            continue
        if local < opening:
            local = opening
        if local + left <= closing:
            return (local + left).astimezone(start.tzinfo)
        left -= closing - local
        local = opening + timedelta(days=1)


def deadline(site_id: int, severity: str, now: datetime) -> datetime:
    """When the alert must be handled, by the site's policy: red in minutes, orange in working
    hours, yellow in days."""
    return deadlines({(site_id, severity)}, now)[(site_id, severity)]


def deadlines(keys: set[tuple[int, str]], now: datetime) -> dict[tuple[int, str], datetime]:
    """``deadline`` of each (site, severity), in two or three queries whatever their number."""
    from .oncall import policies_for

    site_ids = sorted({site_id for site_id, _ in keys})
    policies = policies_for(site_ids)
    zones = {}
    if any(severity == Severity.ORANGE for _, severity in keys):
        zones = dict(db.session.execute(select(Site.id, Site.timezone).where(Site.id.in_(site_ids))).all())
    out = {}
    for site_id, severity in keys:
        policy = policies[site_id]
        if severity == Severity.RED:
            out[(site_id, severity)] = now + timedelta(minutes=policy.ack_minutes)
        elif severity == Severity.ORANGE:
            out[(site_id, severity)] = add_working_hours(now, policy.orange_working_hours, zones[site_id],
                                                         policy.workday_start, policy.workday_end, closed_on(policy))
        elif severity == Severity.YELLOW:
            out[(site_id, severity)] = now + timedelta(days=policy.yellow_days)
        else:
            out[(site_id, severity)] = now + DEFAULT_SLA[Severity.INFO]
    return out


def raise_alert(*, patient_id: int, severity: str, source: str, reason_code: str, summary: str,
                detail: dict | None = None, checkin_id: int | None = None, rule_id: int | None = None) -> Alert:
    if severity not in set(Severity):
        raise ValueError(f"unknown severity {severity!r}")
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise ValueError("unknown patient")
    now = utcnow()
    due = deadline(patient.site_id, severity, now)
    alert = Alert(patient_id=patient_id, site_id=patient.site_id, severity=severity, source=source,
                  reason_code=reason_code, summary=summary[:300], detail=detail, checkin_id=checkin_id,
                  due_at=due, created_at=now, rule_id=rule_id)
    db.session.add(alert)
    db.session.flush()
    alert.group_id = _group_for(alert, now)
    db.session.add(AlertAction(alert=alert, kind="created", note=reason_code, at=now))
    audit.record("alert_raised", patient_id=patient_id, obj=alert, detail={"severity": severity, "reason": reason_code})
    if severity == Severity.RED:
        lead = _waiting_red_lead(alert, now)
        if lead is None:
            page_for_new_alert(alert)  # the on-call page leaves with this transaction's commit
        else:  # one page per check-in: the page already on its way covers this one
            alert.paged_with_id = lead.id
            db.session.add(AlertAction(alert=alert, kind="grouped", note=f"paged with alert {lead.id}", at=now))
    elif should_page(alert, now):  # an instruction out of hours ("pause until the nurse calls")
        page_for_new_alert(alert)
    return alert


def _waiting_red_lead(alert: Alert, now: datetime) -> Alert | None:
    """A red alert of the same patient, paged and not yet acknowledged, that this one rides on."""
    return db.session.scalar(
        select(Alert).where(
            Alert.patient_id == alert.patient_id, Alert.id != alert.id, Alert.severity == Severity.RED,
            Alert.status == AlertStatus.OPEN, Alert.paged_with_id.is_(None),
            Alert.created_at >= now - GROUP_WINDOW,
        ).order_by(Alert.id).limit(1))


def _acknowledge_riders(lead: Alert, actor_id: int | None, now: datetime) -> None:
    """The alerts that rode on ``lead``'s page are acknowledged with it."""
    for rider in db.session.scalars(select(Alert).where(Alert.paged_with_id == lead.id,
                                                        Alert.status == AlertStatus.OPEN)):
        rider.status, rider.acknowledged_at, rider.acknowledged_by_id = AlertStatus.ACKNOWLEDGED, now, actor_id
        rider.owner_id = rider.owner_id or actor_id
        db.session.add(AlertAction(alert=rider, kind="acknowledged", note=f"with alert {lead.id}", actor_id=actor_id,
                                   at=now))
        audit.record("alert_acknowledged", patient_id=rider.patient_id, obj=rider, detail={"with": lead.id})


@dataclass(frozen=True)
class NewAlert:
    """One alert for ``raise_alerts`` (the arguments of ``raise_alert``)."""

    patient_id: int
    severity: str
    source: str
    reason_code: str
    summary: str
    detail: dict | None = None


def raise_alerts(new: Sequence[NewAlert]) -> list[int]:
    """``raise_alert`` for many alerts, in a few statements whatever their number: the same
    rows (the alert, its "created" action, its audit row), deadlines and groups, as if raised
    one after the other in this order. Red alerts page someone, so a list with one goes
    through ``raise_alert`` one by one. Returns the alerts' ids, in order."""
    if not new:
        return []
    for a in new:
        if a.severity not in set(Severity):
            raise ValueError(f"unknown severity {a.severity!r}")
    if any(a.severity == Severity.RED for a in new):
        return [raise_alert(patient_id=a.patient_id, severity=a.severity, source=a.source,
                            reason_code=a.reason_code, summary=a.summary, detail=a.detail).id for a in new]
    pids = sorted({a.patient_id for a in new})
    sites = dict(db.session.execute(select(Patient.id, Patient.site_id).where(Patient.id.in_(pids))).all())
    if len(sites) != len(pids):
        raise ValueError("unknown patient")
    now = utcnow()
    due = deadlines({(sites[a.patient_id], a.severity) for a in new}, now)
    groups = _latest_groups(pids, now)
    table = Alert.__table__
    ids = list(db.session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), [
        {"patient_id": a.patient_id, "site_id": sites[a.patient_id], "severity": a.severity, "source": a.source,
         "reason_code": a.reason_code, "summary": a.summary[:300], "detail": a.detail, "checkin_id": None,
         "due_at": due[(sites[a.patient_id], a.severity)], "created_at": now, "rule_id": None,
         "status": AlertStatus.OPEN, "escalation_level": 0}
        for a in new]).scalars())
    # Each alert joins the group of the patient's newest unresolved alert of the last 24 hours,
    # which for the second alert of a patient here is the first one.
    grouped = []
    for a, alert_id in zip(new, ids, strict=True):
        grouped.append({"aid": alert_id, "gid": groups.setdefault(a.patient_id, alert_id)})
    db.session.execute(update(table).where(table.c.id == bindparam("aid")).values(group_id=bindparam("gid")),
                       grouped)
    db.session.execute(insert(AlertAction.__table__), [
        {"alert_id": alert_id, "kind": "created", "note": a.reason_code, "at": now, "actor_id": None}
        for a, alert_id in zip(new, ids, strict=True)])
    audit.record_many("alert_raised", [
        (a.patient_id, "Alert", alert_id, {"severity": a.severity, "reason": a.reason_code})
        for a, alert_id in zip(new, ids, strict=True)])
    return ids


def _latest_groups(patient_ids: list[int], now: datetime) -> dict[int, int]:
    """Patient -> the group of their newest unresolved alert raised within the window."""
    out: dict[int, int] = {}
    rows = db.session.execute(
        select(Alert.patient_id, Alert.group_id, Alert.id).where(
            Alert.patient_id.in_(patient_ids), Alert.status != AlertStatus.RESOLVED,
            Alert.created_at >= now - GROUP_WINDOW,
        ).order_by(Alert.patient_id, Alert.created_at, Alert.id))
    for pid, group_id, alert_id in rows:
        out[pid] = group_id or alert_id  # the last row of a patient is the newest
    return out


GROUP_WINDOW = timedelta(hours=24)


def _group_for(alert: Alert, now: datetime) -> int:
    """Join the patient's newest unresolved alert raised within the window, else start a group."""
    previous = db.session.scalar(
        select(Alert).where(
            Alert.patient_id == alert.patient_id, Alert.id != alert.id,
            Alert.status != AlertStatus.RESOLVED, Alert.created_at >= now - GROUP_WINDOW,
        ).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(1)
    )
    if previous is None:
        return alert.id
    return previous.group_id or previous.id


def acknowledge(alert: Alert, *, actor: Professional, note: str | None = None) -> None:
    if alert.status != AlertStatus.OPEN:
        raise ValidationFailed({"status": _("This alert is not open.")})
    now = utcnow()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by_id = actor.id
    alert.owner_id = alert.owner_id or actor.id
    db.session.add(AlertAction(alert=alert, kind="acknowledged", note=note, actor_id=actor.id))
    audit.record("alert_acknowledged", patient_id=alert.patient_id, obj=alert)
    _acknowledge_riders(alert, actor.id, now)


def add_action(alert: Alert, *, kind: str, note: str, actor: Professional) -> AlertAction:
    if not (note or "").strip():
        raise ValidationFailed({"note": _("Describe what was done.")})
    action = AlertAction(alert=alert, kind=kind, note=note.strip(), actor_id=actor.id)
    db.session.add(action)
    audit.record("alert_action", patient_id=alert.patient_id, obj=alert, detail={"kind": kind})
    return action


def resolve(alert: Alert, *, actor: Professional, note: str) -> None:
    """Only a person closes an alert, and only with a note."""
    if alert.status == AlertStatus.RESOLVED:
        raise ValidationFailed({"status": _("This alert is already resolved.")})
    if not (note or "").strip():
        raise ValidationFailed({"note": _("A note is required to close an alert.")})
    now = utcnow()
    if alert.status == AlertStatus.OPEN:
        alert.acknowledged_at = now
        alert.acknowledged_by_id = actor.id
        _acknowledge_riders(alert, actor.id, now)
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolved_by_id = actor.id
    alert.resolution_note = note.strip()
    db.session.add(AlertAction(alert=alert, kind="resolved", note=note.strip(), actor_id=actor.id))
    audit.record("alert_resolved", patient_id=alert.patient_id, obj=alert)


def create_task(*, patient_id: int, kind: str, reason_code: str, checkin_id: int | None = None) -> NurseTask:
    """Idempotent: the same patient, kind and check-in give back the existing task."""
    key = f"{patient_id}:{kind}:{checkin_id if checkin_id is not None else reason_code}"
    existing = db.session.scalar(select(NurseTask).where(NurseTask.dedupe_key == key))
    if existing is not None:
        return existing
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise ValueError("unknown patient")
    task = NurseTask(patient_id=patient_id, site_id=patient.site_id, kind=kind, reason_code=reason_code,
                     checkin_id=checkin_id, dedupe_key=key)
    db.session.add(task)
    db.session.flush()
    audit.record("task_created", patient_id=patient_id, obj=task, detail={"kind": kind})
    return task


def complete_task(task: NurseTask, *, actor: Professional, note: str) -> None:
    if task.status != TaskStatus.OPEN:
        raise ValidationFailed({"status": _("This task is already closed.")})
    task.status = TaskStatus.DONE
    task.done_at = utcnow()
    task.done_by_id = actor.id
    task.note = (note or "").strip() or None
    audit.record("task_done", patient_id=task.patient_id, obj=task)
