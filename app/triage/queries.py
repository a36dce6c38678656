"""Read side of triage: the work queue (one line per alert group) and counts for the live badge."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from app.care.models import Patient
from app.core.time import utcnow
from app.extensions import db

from .models import Alert, AlertStatus, NurseTask, Severity, TaskStatus

RANK = case(
    (Alert.severity == Severity.RED, 0), (Alert.severity == Severity.ORANGE, 1),
    (Alert.severity == Severity.YELLOW, 2), else_=3,
)


@dataclass(frozen=True)
class QueueLine:
    alert: Alert          # the most severe, most urgent alert of the group
    count: int            # alerts in the group
    due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class QueuePage:
    lines: list[QueueLine]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def queue(site_id: int, *, owner_id: int | None = None, severity: str | None = None,
          page: int = 1, per_page: int = 25) -> QueuePage:
    """Unresolved alert groups of a site, most severe first then earliest deadline: 3 statements."""
    now = utcnow()
    conditions = [Alert.site_id == site_id, Alert.status != AlertStatus.RESOLVED]
    if owner_id:
        conditions.append((Alert.owner_id == owner_id) | Alert.owner_id.is_(None))
    if severity:
        conditions.append(Alert.severity == severity)
    group_key = func.coalesce(Alert.group_id, Alert.id)
    grouped = (
        select(group_key.label("gid"), func.min(RANK).label("rank"), func.min(Alert.due_at).label("due"),
               func.count().label("n"))
        .where(*conditions).group_by(group_key).subquery()
    )
    total = db.session.scalar(select(func.count()).select_from(grouped))
    page = max(1, page)
    rows = db.session.execute(
        select(grouped.c.gid, grouped.c.rank, grouped.c.due, grouped.c.n)
        .order_by(grouped.c.rank, grouped.c.due, grouped.c.gid)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    if not rows:
        return QueuePage([], total, page, per_page)
    gids = [r.gid for r in rows]
    members = db.session.scalars(
        select(Alert).where(func.coalesce(Alert.group_id, Alert.id).in_(gids), *conditions)
        .options(selectinload(Alert.patient).selectinload(Patient.site), selectinload(Alert.owner))
    ).all()
    best: dict[int, Alert] = {}
    for alert in members:
        gid = alert.group_id or alert.id
        current = best.get(gid)
        key = (_rank(alert.severity), alert.due_at)
        if current is None or key < (_rank(current.severity), current.due_at):
            best[gid] = alert
    lines = []
    for r in rows:
        due = r.due if r.due.tzinfo else r.due.replace(tzinfo=now.tzinfo)
        lines.append(QueueLine(best[r.gid], r.n, due, due < now))
    return QueuePage(lines, total, page, per_page)


def _rank(severity: str) -> int:
    return {"red": 0, "orange": 1, "yellow": 2}.get(severity, 3)


def counts(site_id: int) -> dict:
    """Open work for the live badge: unresolved alerts per severity, overdue, open nurse tasks."""
    now = utcnow()
    rows = db.session.execute(
        select(Alert.severity, func.count(), func.sum(case((Alert.due_at < now, 1), else_=0)))
        .where(Alert.site_id == site_id, Alert.status != AlertStatus.RESOLVED)
        .group_by(Alert.severity)
    ).all()
    result = {s.value: 0 for s in Severity}
    overdue = 0
    for severity, n, late in rows:
        result[severity] = n
        overdue += int(late or 0)
    tasks = db.session.scalar(
        select(func.count()).select_from(NurseTask).where(NurseTask.site_id == site_id,
                                                          NurseTask.status == TaskStatus.OPEN)
    )
    return {"alerts": result, "overdue": overdue, "tasks": tasks, "at": now.isoformat()}


def patient_alerts(patient_id: int, limit: int = 50) -> list[Alert]:
    return list(db.session.scalars(
        select(Alert).where(Alert.patient_id == patient_id)
        .options(selectinload(Alert.actions))
        .order_by(Alert.created_at.desc()).limit(limit)
    ))


def open_tasks(site_id: int, limit: int = 100) -> list[NurseTask]:
    return list(db.session.scalars(
        select(NurseTask).where(NurseTask.site_id == site_id, NurseTask.status == TaskStatus.OPEN)
        .options(selectinload(NurseTask.patient)).order_by(NurseTask.created_at).limit(limit)
    ))


def undelivered(site_id: int, *, days: int = 14, limit: int = 50) -> list:
    """Messages to the site's patients that could not be sent (permanent failure or gave up)."""
    from datetime import timedelta

    from app.notifications.models import OutboxEntry

    since = utcnow() - timedelta(days=days)
    return list(db.session.execute(
        select(OutboxEntry, Patient).join(Patient, Patient.id == OutboxEntry.patient_id)
        .where(Patient.site_id == site_id, OutboxEntry.state.in_(["failed", "dead"]),
               OutboxEntry.created_at >= since)
        .order_by(OutboxEntry.created_at.desc()).limit(limit)
    ).all())
