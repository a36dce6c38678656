from flask import Blueprint, render_template
from flask_login import login_required

from app.core.roles import Role
from app.web.access import roles_required

bp = Blueprint("admin", __name__)


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    return render_template("admin/index.html")
