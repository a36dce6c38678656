"""Raising alerts and nurse tasks. Called in the same transaction as the event that causes them."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import select

from app.care.models import Patient, Professional, Site
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db

from .models import Alert, AlertAction, AlertStatus, NurseTask, Severity, TaskStatus
from .paging import page_for_new_alert

# Default deadlines per severity (DESIGN.md section 8); sites will override them (issue 4).
DEFAULT_SLA = {
    Severity.RED: timedelta(minutes=30),
    Severity.ORANGE: timedelta(days=1),
    Severity.YELLOW: timedelta(days=7),
    Severity.INFO: timedelta(days=14),
}


def add_working_hours(start: datetime, hours: float, tz_name: str, day_start: int, day_end: int) -> datetime:
    """``start`` plus ``hours`` counted only Monday to Friday between ``day_start`` and ``day_end``
    in the site's time zone (public holidays are not known to the platform)."""
    tz = ZoneInfo(tz_name or "Europe/Paris")
    local = start.astimezone(tz)
    left = timedelta(hours=hours)
    while True:
        opening = local.replace(hour=day_start, minute=0, second=0, microsecond=0)
        closing = opening + timedelta(hours=day_end - day_start)
        if local.weekday() >= 5 or local >= closing:
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
    from .oncall import effective_policy

    policy = effective_policy(site_id)
    if severity == Severity.RED:
        return now + timedelta(minutes=policy.ack_minutes)
    if severity == Severity.ORANGE:
        site = db.session.get(Site, site_id)
        return add_working_hours(now, policy.orange_working_hours, site.timezone, policy.workday_start,
                                 policy.workday_end)
    if severity == Severity.YELLOW:
        return now + timedelta(days=policy.yellow_days)
    return now + DEFAULT_SLA[Severity.INFO]


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
        page_for_new_alert(alert)  # the on-call page leaves with this transaction's commit
    return alert


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
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by_id = actor.id
    alert.owner_id = alert.owner_id or actor.id
    db.session.add(AlertAction(alert=alert, kind="acknowledged", note=note, actor_id=actor.id))
    audit.record("alert_acknowledged", patient_id=alert.patient_id, obj=alert)


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
