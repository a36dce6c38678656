"""Administration: organisations, sites, accounts and the audit log. Admins see no patient record.

Views parse a form, call one service or query, commit once and render.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.care.models import ORGANISATION_KIND_LABELS, Organisation, Professional, Site
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.extensions import db
from app.web.access import roles_required
from app.web.forms import TIMEZONES, apply_errors

from . import audit_log, queries, services
from .forms import (
    AccountFilterForm, AccountForm, AuditFilterForm, ConfirmForm, NewAccountForm, OrganisationFilterForm,
    OrganisationForm, PasswordResetForm, SiteFilterForm, SiteForm,
)

bp = Blueprint("admin", __name__)

# Offered as suggestions in the audit filter; any action name can be typed.
KNOWN_ACTIONS = (
    "read", "list", "create", "update", "denied", "login", "logout", "audit_read",
    "account_create", "account_update", "account_deactivate", "account_reactivate", "password_reset",
    "organisation_create", "organisation_update", "site_create", "site_update",
)


def _region() -> str:
    return current_app.config["DEFAULT_PHONE_REGION"]


def _page_no() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


def _list_args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "page"}


def _get_or_404(model, object_id: int):
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    return obj


def _form_page(form, template: str, save: Callable[[], Any], done: Callable[[Any], str], message: str,
               **context):
    """Run ``save`` on a valid POST and commit; otherwise show the form, errors inline (422)."""
    if form.validate_on_submit():
        try:
            result = save()
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(done(result))
    status = 422 if request.method == "POST" else 200
    return render_template(template, form=form, **context), status


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    return render_template("admin/index.html", counts=queries.admin_counts())


# --- organisations ---------------------------------------------------------------------------

@bp.route("/organisations")
@login_required
@roles_required(Role.ADMIN)
def organisations():
    form = OrganisationFilterForm(request.args)
    form.validate()
    page = queries.organisation_page(kind=form.kind.data if not form.kind.errors else "",
                                     q=form.q.data or "", page=_page_no(),
                                     per_page=current_app.config["PAGE_SIZE"])
    return render_template("admin/organisations.html", form=form, page=page, args=_list_args())


@bp.route("/organisations/new", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def new_organisation():
    form = OrganisationForm()
    return _form_page(form, "admin/organisation_form.html",
                      lambda: services.create_organisation(form.data, region=_region()),
                      lambda org: url_for("admin.organisations"), _("Organisation created."), org=None)


@bp.route("/organisations/<int:org_id>/edit", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def edit_organisation(org_id: int):
    org = _get_or_404(Organisation, org_id)
    form = OrganisationForm(obj=org)
    return _form_page(form, "admin/organisation_form.html",
                      lambda: services.update_organisation(org, form.data, region=_region()),
                      lambda _org: url_for("admin.organisations"), _("Changes saved."), org=org)


# --- sites -----------------------------------------------------------------------------------

def _site_form(site: Site | None) -> SiteForm:
    form = SiteForm(obj=site)
    form.organisation_id.choices = [("", "—")] + queries.hospital_choices()
    return form


@bp.route("/sites")
@login_required
@roles_required(Role.ADMIN)
def sites():
    form = SiteFilterForm(request.args)
    form.validate()
    page = queries.site_page(q=form.q.data or "", page=_page_no(), per_page=current_app.config["PAGE_SIZE"])
    return render_template("admin/sites.html", form=form, page=page, args=_list_args())


@bp.route("/sites/new", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def new_site():
    form = _site_form(None)
    return _form_page(form, "admin/site_form.html",
                      lambda: services.create_site(form.data, region=_region()),
                      lambda site: url_for("admin.sites"), _("Site created."), site=None, timezones=TIMEZONES)


@bp.route("/sites/<int:site_id>/edit", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def edit_site(site_id: int):
    site = _get_or_404(Site, site_id)
    form = _site_form(site)
    return _form_page(form, "admin/site_form.html",
                      lambda: services.update_site(site, form.data, region=_region()),
                      lambda _site: url_for("admin.sites"), _("Changes saved."), site=site, timezones=TIMEZONES)


# --- accounts --------------------------------------------------------------------------------

@bp.route("/accounts")
@login_required
@roles_required(Role.ADMIN)
def accounts():
    form = AccountFilterForm(request.args)
    form.site_id.choices = [("", _("All"))] + queries.site_choices()
    form.validate()
    active = {"1": True, "0": False}.get(form.active.data or "")
    filters = queries.AccountFilters(
        q=form.q.data or "", role=form.role.data if not form.role.errors else "",
        site_id=form.site_id.data if not form.site_id.errors else None,
        active=active if not form.active.errors else None,
    )
    page = queries.account_page(filters, page=_page_no(), per_page=current_app.config["PAGE_SIZE"])
    return render_template("admin/accounts.html", form=form, page=page, args=_list_args())


def _account_choices(form: AccountForm) -> None:
    form.organisation_id.choices = [("", "—")] + [
        (org_id, f"{label} · {ORGANISATION_KIND_LABELS[kind]}") for org_id, label, kind in queries.organisation_choices()
    ]
    form.site_id.choices = [("", "—")] + queries.site_choices()


@bp.route("/accounts/new", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def new_account():
    form = NewAccountForm()
    _account_choices(form)
    return _form_page(form, "admin/account_form.html",
                      lambda: services.create_account(form.data, password=form.password.data, region=_region()),
                      lambda prof: url_for("admin.edit_account", prof_id=prof.id), _("Account created."),
                      prof=None)


@bp.route("/accounts/<int:prof_id>/edit", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def edit_account(prof_id: int):
    prof = _get_or_404(Professional, prof_id)
    form = AccountForm(obj=prof)
    _account_choices(form)
    return _form_page(form, "admin/account_form.html",
                      lambda: services.update_account(prof, form.data, actor=current_user, region=_region()),
                      lambda _prof: url_for("admin.edit_account", prof_id=prof_id), _("Changes saved."),
                      prof=prof)


@bp.route("/accounts/<int:prof_id>/password", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def reset_password(prof_id: int):
    prof = _get_or_404(Professional, prof_id)
    form = PasswordResetForm()
    return _form_page(form, "admin/account_password.html",
                      lambda: services.reset_password(prof, form.password.data, actor=current_user),
                      lambda _none: url_for("admin.edit_account", prof_id=prof_id),
                      _("Password changed; the account's open sessions have ended."), prof=prof)


def _set_active(prof_id: int, active: bool):
    prof = _get_or_404(Professional, prof_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        changed = services.set_account_active(prof, active, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        for messages in exc.errors.values():
            for message in messages:
                flash(message, "error")
    else:
        db.session.commit()
        if changed:
            flash(_("Account reactivated.") if active else _("Account deactivated; its sessions have ended."),
                  "success")
    return redirect(request.form.get("next") if request.form.get("next", "").startswith("/admin/")
                    else url_for("admin.edit_account", prof_id=prof_id))


@bp.route("/accounts/<int:prof_id>/deactivate", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def deactivate_account(prof_id: int):
    return _set_active(prof_id, False)


@bp.route("/accounts/<int:prof_id>/reactivate", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def reactivate_account(prof_id: int):
    return _set_active(prof_id, True)


# --- audit log -------------------------------------------------------------------------------

@bp.route("/audit")
@login_required
@roles_required(Role.ADMIN)
def audit():
    form = AuditFilterForm(request.args)
    page = None
    if form.validate():
        filters = audit_log.AuditFilters(
            patient_id=form.patient_id.data, actor=form.actor.data or "", action=form.action.data or "",
            date_from=form.date_from.data, date_to=form.date_to.data)
        try:
            page = audit_log.browse_audit_log(
                filters, before=request.args.get("before", type=int), after=request.args.get("after", type=int),
                per_page=current_app.config.get("AUDIT_PAGE_SIZE", 50),
                tz_name=current_app.config["BABEL_DEFAULT_TIMEZONE"])
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            db.session.commit()
    args = {k: v for k, v in request.args.items() if k not in ("before", "after")}
    return render_template("admin/audit.html", form=form, page=page, args=args, actions=KNOWN_ACTIONS,
                           tz_name=current_app.config["BABEL_DEFAULT_TIMEZONE"])
