"""Pages: monthly statements, indicators (hospital staff: their site; admins: every site) and the
tariff list (admins). Views parse, call one query or service, render."""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from app.care.models import Site
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import HOSPITAL_ROLES, Role
from app.core.time import utcnow
from app.extensions import db
from app.web.access import roles_required
from app.web.forms import apply_errors

from .forms import TariffForm
from .indicators import compute_indicators, indicators_csv
from .months import month_key, parse_month, previous_month
from .statements import euros, monthly_statement, statement_csv
from .tariffs import add_tariff, list_tariffs

bp = Blueprint("reports", __name__)
STAFF = (*HOSPITAL_ROLES, Role.ADMIN)


@bp.app_template_filter("euros")
def euros_filter(cents: int) -> str:
    return euros(int(cents or 0))


def _scope() -> tuple[list[Site], list[int] | None]:
    """The sites offered and the ones selected (None: all). Staff only ever get their own site."""
    if current_user.role != Role.ADMIN:
        site = db.session.get(Site, current_user.site_id) if current_user.site_id else None
        if site is None:
            abort(403)
        return [site], [site.id]
    sites = list(db.session.scalars(select(Site).order_by(Site.code)))
    chosen = request.args.get("site", "")
    if chosen:
        match = [s.id for s in sites if s.code == chosen]
        if not match:
            abort(404)
        return sites, match
    return sites, None


def _month() -> str:
    value = request.args.get("month") or month_key(previous_month(utcnow().date()))
    try:
        parse_month(value)
    except ValueError:
        abort(400)
    return value


def _csv(body: str, filename: str) -> Response:
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/reports/statements")
@login_required
@roles_required(*STAFF)
def statements():
    sites, site_ids = _scope()
    month = _month()
    statement = monthly_statement(month, site_ids)
    audit.record("report_read", detail={"report": "statements", "month": month})
    db.session.commit()
    if request.args.get("format") == "csv":
        return _csv(statement_csv(statement), f"statements-{month}.csv")
    return render_template("reports/statements.html", statement=statement, sites=sites,
                           site=request.args.get("site", ""))


@bp.route("/reports/indicators")
@login_required
@roles_required(*STAFF)
def indicators():
    sites, site_ids = _scope()
    result = compute_indicators(site_ids, utcnow())
    audit.record("report_read", detail={"report": "indicators"})
    db.session.commit()
    if request.args.get("format") == "csv":
        return _csv(indicators_csv(result), f"indicators-{utcnow().date().isoformat()}.csv")
    return render_template("reports/indicators.html", ind=result, sites=sites, site=request.args.get("site", ""))


@bp.route("/admin/tariffs", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def tariffs():
    form = TariffForm()
    if form.validate_on_submit():
        try:
            add_tariff(code=form.code.data, recipient=form.recipient.data,
                       amount_cents=round(form.amount.data * 100), from_month=form.from_month.data,
                       valid_from=form.valid_from.data, valid_to=form.valid_to.data, note=form.note.data or "",
                       actor_id=current_user.id)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Tariff version added."), "success")
            return redirect(url_for("reports.tariffs"))
    return render_template("reports/tariffs.html", form=form, tariffs=list_tariffs())
