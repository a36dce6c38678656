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


@dataclass(frozen=True)
class FailedSend:
    """A message that did not reach its recipient, with what it was for."""

    entry: object  # the OutboxEntry
    status: str  # the outbox state (failed, dead) or the provider's final status (undelivered, no-answer...)
    error_code: int | None
    patient: Patient | None = None  # a message to a patient
    page: object | None = None  # an AlertPage: a page to a professional or the fallback
    notice: str | None = None  # another kind of message of the site (e.g. "rota_gap")

    @property
    def when(self) -> datetime:
        return self.entry.created_at


def undelivered(site_id: int, *, days: int = 14, limit: int = 50) -> list[FailedSend]:
    """Messages of the site that could not be delivered (refused for good, given up, undelivered,
    a call not answered), newest first, whatever they are tied to: a patient of the site, a page
    about one of its alerts, a notice to its staff. Five statements at most."""
    from datetime import timedelta

    from sqlalchemy import and_, or_

    from app.notifications.models import Message, MessageChannel, OutboxEntry, given_up, undelivered

    from .escalation import CALL_FAILED, SMS_FAILED
    from .paging import AlertPage

    since = utcnow() - timedelta(days=days)
    # The candidates through two small partial indexes, then the site's among them.
    candidates = set(db.session.scalars(select(OutboxEntry.id).where(given_up(), OutboxEntry.created_at >= since)))
    lost = {row.outbox_id: (row.status, row.error_code) for row in db.session.execute(
        select(Message.outbox_id, Message.status, Message.error_code)
        .where(undelivered(), Message.status_updated_at >= since, Message.outbox_id.is_not(None),
               or_(and_(Message.channel == MessageChannel.SMS, Message.status.in_(SMS_FAILED)),
                   and_(Message.channel == MessageChannel.VOICE, Message.status.in_(CALL_FAILED)))))}
    candidates |= set(lost)
    if not candidates:
        return []
    page_of_site = select(AlertPage.id).join(Alert, Alert.id == AlertPage.alert_id).where(
        Alert.site_id == site_id,
        or_(AlertPage.outbox_id == OutboxEntry.id, AlertPage.call_outbox_id == OutboxEntry.id)).exists()
    entries = list(db.session.scalars(
        select(OutboxEntry).outerjoin(Patient, Patient.id == OutboxEntry.patient_id)
        .where(OutboxEntry.id.in_(sorted(candidates)),
               or_(Patient.site_id == site_id, page_of_site, OutboxEntry.ref.like(f"rota-gap:{site_id}:%")))
        .order_by(OutboxEntry.created_at.desc(), OutboxEntry.id.desc()).limit(limit)))
    rows = [(entry, *lost.get(entry.id, (None, None))) for entry in entries]
    if not rows:
        return []
    ids = [entry.id for entry, _s, _c in rows]
    pages = {}
    for page in db.session.scalars(select(AlertPage).where(
            or_(AlertPage.outbox_id.in_(ids), AlertPage.call_outbox_id.in_(ids)))
            .options(selectinload(AlertPage.professional))):
        pages[page.outbox_id] = page
        if page.call_outbox_id:
            pages[page.call_outbox_id] = page
    patient_ids = {entry.patient_id for entry, _s, _c in rows if entry.patient_id}
    patients = {p.id: p for p in db.session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))} \
        if patient_ids else {}
    out = []
    for entry, status, code in rows:
        out.append(FailedSend(entry, status if entry.state not in ("failed", "dead") else entry.state,
                              entry.last_error_code or code, patients.get(entry.patient_id), pages.get(entry.id),
                              "rota_gap" if (entry.ref or "").startswith("rota-gap:") else None))
    return out


def pages_of_alert(alert_id: int) -> list[tuple]:
    """(page, [(channel, outbox entry, provider status)]) of an alert, in level order: who was paged,
    how, and what became of each text and call."""
    from app.notifications.models import Message, OutboxEntry

    from .paging import AlertPage

    pages = list(db.session.scalars(select(AlertPage).where(AlertPage.alert_id == alert_id)
                                    .options(selectinload(AlertPage.professional)).order_by(AlertPage.level)))
    ids = [i for p in pages for i in (p.outbox_id, p.call_outbox_id) if i]
    if not ids:
        return [(p, []) for p in pages]
    entries = {e.id: e for e in db.session.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(ids)))}
    statuses = dict(db.session.execute(select(Message.outbox_id, Message.status)
                                       .where(Message.outbox_id.in_(ids))).all())
    return [(p, [(entries[i].channel, entries[i], statuses.get(i)) for i in (p.outbox_id, p.call_outbox_id) if i])
            for p in pages]
