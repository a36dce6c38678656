"""Reads that write an audit row: render first, then commit, then answer."""
from __future__ import annotations

from flask import render_template

from app.extensions import db


def render_then_commit(template: str, status: int = 200, **context):
    """Render while the loaded rows are fresh (a commit expires them, and the template would then
    reload them one query per row), then commit the audit row; the page leaves only after it."""
    html = render_template(template, **context)
    db.session.commit()
    return html, status
