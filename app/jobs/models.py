"""What the scheduler remembers: one row per job run, and the lease naming the active scheduler."""
from __future__ import annotations

from enum import StrEnum

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


class RunSource(StrEnum):
    SCHEDULER = "scheduler"  # the production scheduler process
    DEMO = "demo"  # the scheduler thread of the single-process demo
    CLI = "cli"  # an operator's ``flask jobs run``
    STANDBY = "standby"  # a standby scheduler's own duties (``JobSpec.on_standby``)


class JobRun(db.Model):
    """One execution of a registered job; ``outcome`` stays empty while it runs."""

    __tablename__ = "job_run"
    __table_args__ = (db.Index("ix_job_run_job_started", "job", "started_at"),)

    id = db.Column(db.Integer, primary_key=True)
    job = db.Column(db.String(60), nullable=False)
    source = db.Column(db.String(20), nullable=False)
    started_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at = db.Column(UTCDateTime())
    duration_ms = db.Column(db.Integer)
    outcome = db.Column(db.String(10))
    # Counts returned by the job; never patient data.
    summary = db.Column(db.JSON)
    # Exception type and code locations only: messages may quote patient data.
    error = db.Column(db.Text)
    host = db.Column(db.String(255), nullable=False)
    pid = db.Column(db.Integer, nullable=False)

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def __repr__(self) -> str:
        return f"<JobRun {self.id} {self.job} {self.outcome or 'running'}>"


class SchedulerLease(db.Model):
    """Who may schedule jobs, until when. One row per lease name; see ``app.jobs.lease``."""

    __tablename__ = "scheduler_lease"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(60), nullable=False, unique=True)
    holder = db.Column(db.String(255), nullable=False)
    acquired_at = db.Column(UTCDateTime(), nullable=False)
    renewed_at = db.Column(UTCDateTime(), nullable=False)
    expires_at = db.Column(UTCDateTime(), nullable=False)

    def __repr__(self) -> str:
        return f"<SchedulerLease {self.name} {self.holder} until {self.expires_at:%H:%M:%S}>"
