"""The nurse's work queue, alert pages and nurse tasks. Hospital staff of the patient's site only."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.care import access as care_access
from app.auth.views import _safe_next
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import HOSPITAL_ROLES
from app.extensions import db
from app.web.access import deny, roles_required
from app.web.rendering import render_then_commit

from . import panels, queries, services
from .forms import AcknowledgeForm, ActionForm, ResolveForm, TaskDoneForm
from .models import Alert, NurseTask, Severity

bp = Blueprint("triage", __name__)


def _load_alert(alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id)
    if alert is None or not care_access.can_view(current_user, alert.patient):
        deny(404, patient_id=alert.patient_id if alert else None, reason="alert_out_of_scope")
    return alert


@bp.route("/triage")
@login_required
@roles_required(*HOSPITAL_ROLES)
def queue():
    severity = request.args.get("severity") if request.args.get("severity") in set(Severity) else None
    mine = request.args.get("mine") == "1"
    page = queries.queue(current_user.site_id, owner_id=current_user.id if mine else None, severity=severity,
                         page=request.args.get("page", 1, type=int) or 1,
                         per_page=current_app.config["PAGE_SIZE"])
    tasks = queries.open_tasks(current_user.site_id)
    from .oncall import upcoming_gap_warnings

    silent = panels.provide("non_responders", current_user, limit=50) or []
    gaps = upcoming_gap_warnings([current_user.site_id], horizon_hours=72)
    failed = queries.undelivered(current_user.site_id)
    from app.notifications.inbound import stale_backlog

    unread = stale_backlog(current_app.config["INBOUND_STALE_SECONDS"])
    audit.record("list", object_type="Alert", detail={"page": page.page, "results": len(page.lines)})
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_then_commit("triage/queue.html", page=page, tasks=tasks, counts=queries.counts(current_user.site_id),
                           severity=severity, mine=mine, args=args, done_form=TaskDoneForm(),
                           silent=silent, gaps=gaps, failed=failed, unread=unread)


@bp.route("/triage/counts")
@login_required
@roles_required(*HOSPITAL_ROLES)
def counts():
    return jsonify(queries.counts(current_user.site_id))


@bp.route("/alerts/<int:alert_id>")
@login_required
@roles_required(*HOSPITAL_ROLES)
def alert(alert_id: int):
    alert = _load_alert(alert_id)
    audit.record("read", patient_id=alert.patient_id, obj=alert)
    group = []
    if alert.group_id:
        group = [a for a in queries.patient_alerts(alert.patient_id) if (a.group_id or a.id) == alert.group_id
                 and a.id != alert.id]
    return render_then_commit("triage/alert.html", alert=alert, group=group, ack_form=AcknowledgeForm(),
                           action_form=ActionForm(), resolve_form=ResolveForm(),
                           pages=queries.pages_of_alert(alert.id))


def _act(alert_id: int, form_class, apply):
    alert = _load_alert(alert_id)
    form = form_class()
    if not form.validate_on_submit():
        for field in form:
            for message in field.errors:
                flash(f"{field.label.text}: {message}", "error")
        return redirect(url_for("triage.alert", alert_id=alert_id))
    try:
        apply(alert, form)
    except ValidationFailed as exc:
        db.session.rollback()
        for messages in exc.errors.values():
            for message in messages:
                flash(message, "error")
    else:
        db.session.commit()
        flash(_("Alert updated."), "success")
    return redirect(url_for("triage.alert", alert_id=alert_id))


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@login_required
@roles_required(*HOSPITAL_ROLES)
def acknowledge(alert_id: int):
    return _act(alert_id, AcknowledgeForm,
                lambda a, f: services.acknowledge(a, actor=current_user, note=f.note.data or None))


@bp.route("/alerts/<int:alert_id>/actions", methods=["POST"])
@login_required
@roles_required(*HOSPITAL_ROLES)
def add_action(alert_id: int):
    return _act(alert_id, ActionForm,
                lambda a, f: services.add_action(a, kind=f.kind.data, note=f.note.data, actor=current_user))


@bp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
@login_required
@roles_required(*HOSPITAL_ROLES)
def resolve(alert_id: int):
    return _act(alert_id, ResolveForm, lambda a, f: services.resolve(a, actor=current_user, note=f.note.data))


@bp.route("/tasks/<int:task_id>/done", methods=["POST"])
@login_required
@roles_required(*HOSPITAL_ROLES)
def task_done(task_id: int):
    task = db.session.get(NurseTask, task_id)
    if task is None or not care_access.can_view(current_user, task.patient):
        deny(404, patient_id=task.patient_id if task else None, reason="task_out_of_scope")
    form = TaskDoneForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.complete_task(task, actor=current_user, note=form.note.data or "")
    except ValidationFailed as exc:
        db.session.rollback()
        for messages in exc.errors.values():
            flash(" ".join(messages), "error")
    else:
        db.session.commit()
        flash(_("Task closed."), "success")
    return redirect(_safe_next(request.form.get("next")) or url_for("triage.queue"))
