"""Read-only views of the jobs for the operator: last run of each job, next run, lease holder."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import inspect, select, text

from app.extensions import db

from .models import JobRun
from .registry import JobSpec, registry
from .scheduler import JOBSTORE_TABLE


@dataclass(frozen=True)
class JobStatus:
    spec: JobSpec
    last_run: JobRun | None
    next_run_at: datetime | None


def last_run(name: str) -> JobRun | None:
    return db.session.scalar(
        select(JobRun).where(JobRun.job == name).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)
    )


def next_run_times() -> dict[str, datetime]:
    """Next run of each job as stored by the scheduler (empty before any scheduler ever ran)."""
    connection = db.session.connection()
    if not inspect(connection).has_table(JOBSTORE_TABLE):
        return {}
    rows = connection.execute(text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}"))
    return {row.id: datetime.fromtimestamp(row.next_run_time, timezone.utc)
            for row in rows if row.next_run_time is not None}


def job_statuses() -> list[JobStatus]:
    upcoming = next_run_times()
    return [JobStatus(spec, last_run(spec.name), upcoming.get(spec.name)) for spec in registry().values()]
