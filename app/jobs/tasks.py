"""The jobs module's own periodic work."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from app.core.time import utcnow
from app.extensions import db

from .models import JobRun


def prune_job_runs() -> dict:
    """Delete run records older than ``JOB_RUN_RETENTION_DAYS``, keeping each job's latest run."""
    cutoff = utcnow() - timedelta(days=current_app.config["JOB_RUN_RETENTION_DAYS"])
    latest = select(func.max(JobRun.id)).group_by(JobRun.job)
    deleted = db.session.execute(
        delete(JobRun)
        .where(JobRun.started_at < cutoff, JobRun.finished_at.is_not(None), JobRun.id.not_in(latest))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return {"deleted": deleted}
