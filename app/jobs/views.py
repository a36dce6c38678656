"""Admin page: every periodic job with its last run, and which scheduler is active."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from app.core.roles import Role
from app.web.access import roles_required

from . import lease
from .queries import job_statuses

bp = Blueprint("jobs_admin", __name__)

OUTCOME_LABELS = {
    "ok": _l("Succeeded"),
    "error": _l("Failed"),
    "skipped": _l("Skipped"),
    None: _l("Running"),
}
SOURCE_LABELS = {
    "scheduler": _l("scheduler"),
    "demo": _l("demo scheduler"),
    "cli": _l("run by hand"),
}


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    return render_template("jobs/index.html", statuses=job_statuses(), lease=lease.current(),
                           outcome_labels=OUTCOME_LABELS, source_labels=SOURCE_LABELS)
