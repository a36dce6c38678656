"""Administration of the on-call rota, escalation chain and policy of each site (admins only).

Times are entered and shown in the site's time zone and stored in UTC. Every page shows the
gaps of the next 7 days, when a red alert would go straight to the fallback number.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from app.care.models import Site
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.web.access import roles_required
from app.web.forms import apply_errors

from . import oncall
from .oncall_forms import ChannelForm, ConfirmForm, MoveForm, PolicyForm, ShiftForm, StepForm

bp = Blueprint("oncall_admin", __name__)


@bp.app_template_filter("page_channel_label")
def page_channel_label(value: str | None) -> str:
    """Text message, voice call, ... (also for the triage and alert pages)."""
    from .oncall_channels import CHANNEL_LABELS

    return "" if value is None else str(CHANNEL_LABELS.get(value, value))

GAP_WINDOW = timedelta(days=7)
ROTA_PAST = timedelta(days=1)
ROTA_AHEAD = timedelta(days=60)


def _site(site_id: int) -> Site:
    site = db.session.get(Site, site_id)
    if site is None:
        abort(404)
    return site


def _own(model, object_id: int, site: Site):
    obj = db.session.get(model, object_id)
    if obj is None or obj.site_id != site.id:
        abort(404)
    return obj


def _formatter(site: Site):
    zone = ZoneInfo(site.timezone)

    def local(value: datetime) -> str:
        return format_datetime(value.astimezone(zone), "short", locale=str(get_locale()))
    return local


def _to_utc(value: datetime | None, site: Site) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=ZoneInfo(site.timezone)).astimezone(timezone.utc)


def _people_choices(site: Site) -> list[tuple[int, str]]:
    from app.core.roles import ROLE_LABELS

    return [(p.id, f"{p.display_name} · {ROLE_LABELS.get(p.role, p.role)}")
            for p in oncall.pageable_professionals(site.id)]


def _render(template: str, site: Site, status: int = 200, **context):
    now = utcnow()
    return render_template(template, site=site, local=_formatter(site), confirm=ConfirmForm(),
                           gaps=oncall.rota_gaps(site.id, now, now + GAP_WINDOW), **context), status


def _save(form, save, site: Site, done: str, message: str, template: str, **context):
    """Validate, run the service, commit once; errors inline with a 422."""
    if form.validate_on_submit():
        try:
            save()
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(url_for(done, site_id=site.id))
    return _render(template, site, 422 if request.method == "POST" else 200, form=form, **context)


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    sites = list(db.session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)))
    ids = [s.id for s in sites]
    warnings: dict[int, list] = {sid: [] for sid in ids}
    for gap in oncall.upcoming_gap_warnings(ids, 72):
        warnings[gap.site_id].append(gap)
    return render_template("oncall/index.html", sites=sites, warnings=warnings,
                           on_call=oncall.on_call_now(ids), formatters={s.id: _formatter(s) for s in sites})


@bp.route("/sites/<int:site_id>/rota", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def rota(site_id: int):
    site = _site(site_id)
    form = ShiftForm()
    form.professional_id.choices = [("", "—")] + _people_choices(site)
    now = utcnow()
    shifts = oncall.shifts_between(site.id, now - ROTA_PAST, now + ROTA_AHEAD)

    def save():
        return oncall.add_shift(site, professional_id=form.professional_id.data,
                                starts_at=_to_utc(form.starts_at.data, site),
                                ends_at=_to_utc(form.ends_at.data, site))
    return _save(form, save, site, "oncall_admin.rota", _("Shift added."), "oncall/rota.html",
                 shifts=shifts, now=now)


@bp.route("/sites/<int:site_id>/rota/<int:shift_id>/delete", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def remove_shift(site_id: int, shift_id: int):
    site = _site(site_id)
    shift = _own(oncall.OnCallShift, shift_id, site)
    if ConfirmForm().validate_on_submit():
        oncall.remove_shift(shift)
        db.session.commit()
        flash(_("Shift removed."), "success")
    return redirect(url_for("oncall_admin.rota", site_id=site.id))


@bp.route("/sites/<int:site_id>/chain", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def chain(site_id: int):
    site = _site(site_id)
    form = StepForm()
    form.professional_id.choices = [("", "—")] + _people_choices(site)

    def save():
        return oncall.add_step(site, kind=form.kind.data, professional_id=form.professional_id.data,
                               channel=form.channel.data or "sms")
    steps = oncall.steps_of(site.id)
    return _save(form, save, site, "oncall_admin.chain", _("Step added."), "oncall/chain.html",
                 steps=steps, move=MoveForm(), channel_form=ChannelForm(), policy=oncall.effective_policy(site.id))


@bp.route("/sites/<int:site_id>/chain/<int:step_id>/channel", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def step_channel(site_id: int, step_id: int):
    """Page a step by text, call or both; refused (with the reason) when its number cannot receive it."""
    site = _site(site_id)
    step = _own(oncall.EscalationStep, step_id, site)
    form = ChannelForm()
    if form.validate_on_submit():
        try:
            oncall.set_step_channel(step, form.channel.data)
        except ValidationFailed as exc:
            db.session.rollback()
            flash(" ".join(m for msgs in exc.errors.values() for m in msgs), "error")
        else:
            db.session.commit()
            flash(_("Step saved."), "success")
    return redirect(url_for("oncall_admin.chain", site_id=site.id))


@bp.route("/sites/<int:site_id>/chain/<int:step_id>/delete", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def remove_step(site_id: int, step_id: int):
    site = _site(site_id)
    step = _own(oncall.EscalationStep, step_id, site)
    if ConfirmForm().validate_on_submit():
        oncall.remove_step(step)
        db.session.commit()
        flash(_("Step removed."), "success")
    return redirect(url_for("oncall_admin.chain", site_id=site.id))


@bp.route("/sites/<int:site_id>/chain/<int:step_id>/move", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def move_step(site_id: int, step_id: int):
    site = _site(site_id)
    step = _own(oncall.EscalationStep, step_id, site)
    form = MoveForm()
    if form.validate_on_submit():
        try:
            oncall.move_step(step, form.direction.data)
        except ValidationFailed as exc:
            db.session.rollback()
            flash(" ".join(m for msgs in exc.errors.values() for m in msgs), "error")
        else:
            db.session.commit()
    return redirect(url_for("oncall_admin.chain", site_id=site.id))


@bp.route("/sites/<int:site_id>/policy", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def policy(site_id: int):
    site = _site(site_id)
    current = oncall.effective_policy(site.id)
    form = PolicyForm(data=None if request.method == "POST" else {
        "ack_minutes": current.ack_minutes, "fallback_phone": current.fallback_phone,
        "fallback_label": current.fallback_label if current.configured else _("Hospital line"),
        "orange_working_hours": current.orange_working_hours, "yellow_days": current.yellow_days,
        "workday_start": current.workday_start, "workday_end": current.workday_end,
        "fallback_channel": current.fallback_channel, "out_of_hours_orange": current.out_of_hours_orange,
        "holiday_country": current.holiday_country, "holiday_subdivision": current.holiday_subdivision or "",
        "tech_contact_phone": current.tech_contact_phone or "", "tech_contact_channel": current.tech_contact_channel,
        "fault_delay_minutes": current.fault_delay_minutes})

    def save():
        return oncall.save_policy(site, ack_minutes=form.ack_minutes.data, fallback_phone=form.fallback_phone.data,
                                  fallback_label=form.fallback_label.data,
                                  region=current_app.config["DEFAULT_PHONE_REGION"],
                                  orange_working_hours=form.orange_working_hours.data,
                                  yellow_days=form.yellow_days.data, workday_start=form.workday_start.data,
                                  workday_end=form.workday_end.data, fallback_channel=form.fallback_channel.data,
                                  out_of_hours_orange=form.out_of_hours_orange.data,
                                  holiday_country=form.holiday_country.data or "FR",
                                  holiday_subdivision=form.holiday_subdivision.data,
                                  tech_contact_phone=form.tech_contact_phone.data,
                                  tech_contact_channel=form.tech_contact_channel.data,
                                  fault_delay_minutes=5 if form.fault_delay_minutes.data is None
                                  else form.fault_delay_minutes.data)
    return _save(form, save, site, "oncall_admin.policy", _("Policy saved."), "oncall/policy.html",
                 current=current)
