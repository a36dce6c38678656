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
    "standby": _l("standby scheduler"),
}


def _spool_state():
    """This web host's webhook spool (None when it cannot be read) and its oldest item's age."""
    from app.core.time import utcnow
    from app.notifications import spool

    try:
        state = spool.details()
    except Exception:  # noqa: BLE001 - shown as unreadable; the rest of the page still renders
        return None, None
    age = int((utcnow() - state.oldest).total_seconds()) if state.oldest else None
    return state, age


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    spool_state, spool_age = _spool_state()
    return render_template("jobs/index.html", statuses=job_statuses(), lease=lease.current(),
                           outcome_labels=OUTCOME_LABELS, source_labels=SOURCE_LABELS,
                           spool=spool_state, spool_age=spool_age)
