"""Runs one registered job and records the run: start, end, outcome, summary, error.

The record is written in its own session and transactions, apart from the job's: a job that fails
and rolls back still leaves its run (and the reason) behind. Nothing the job raises escapes, and
neither the log nor the record ever holds an exception message, which may quote patient data:
only the exception's type and the code locations it went through.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.db import sqlite_immediate_transactions
from app.core.time import utcnow
from app.extensions import db

from .models import JobRun, Outcome, RunSource
from .registry import JobSpec, get_spec

log = logging.getLogger("oncolink.jobs")

_ROOT = Path(__file__).resolve().parent.parent.parent
_TRACE_FRAMES = 8


class SafeJobError(Exception):
    """A job failure whose message is known to hold no patient data (it is recorded and logged)."""


def run_job(name: str, *, source: str = RunSource.CLI) -> JobRun:
    """Run the job ``name`` once now, inside the current app context; returns its finished record.

    Raises ``UnknownJob`` for a name that is not registered, and lets a failure to write the
    record itself (database down) propagate; whatever the job raises is recorded instead.
    """
    spec = get_spec(name)
    run = _record_start(spec.name, source)
    started = time.monotonic()
    outcome, summary, error = Outcome.OK, {}, None
    try:
        result = _call(spec)
        db.session.commit()  # the job wrapper's commit, for a job that left work pending
    except _TargetMissing:
        db.session.rollback()
        outcome, summary = Outcome.SKIPPED, {"reason": "job not installed"}
    except Exception as exc:
        db.session.rollback()
        outcome, error = Outcome.ERROR, safe_error(exc)
    except BaseException:  # Ctrl-C or SystemExit in the middle of a run: record it, then go on stopping
        db.session.rollback()
        try:
            _record_end(run, Outcome.ERROR, {}, "interrupted", _elapsed_ms(started))
        except Exception:
            log.warning("job %s interrupted; its run record could not be closed", spec.name)
        raise
    else:
        summary = clean_summary(result)
    run = _record_end(run, outcome, summary, error, _elapsed_ms(started))
    _log(run)
    return run


class _TargetMissing(Exception):
    pass


def _call(spec: JobSpec) -> object:
    try:
        func = spec.resolve()
    except ModuleNotFoundError as exc:
        # The module of a part not installed yet (not a broken import inside it): skip, don't fail.
        module_name = spec.target.partition(":")[0]
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _TargetMissing from None
        raise
    return func()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _bookkeeping() -> Session:
    return Session(db.engine, expire_on_commit=False)


def _record_start(name: str, source: str) -> JobRun:
    run = JobRun(job=name, source=str(source), started_at=utcnow(), host=socket.gethostname()[:200],
                 pid=os.getpid())
    with sqlite_immediate_transactions(), _bookkeeping() as session:
        session.add(run)
        session.commit()
    return run


def _record_end(run: JobRun, outcome: Outcome, summary: dict, error: str | None, duration_ms: int) -> JobRun:
    with sqlite_immediate_transactions(), _bookkeeping() as session:
        run = session.get(JobRun, run.id)
        run.finished_at = utcnow()
        run.duration_ms = duration_ms
        run.outcome = str(outcome)
        run.summary = summary
        run.error = error
        session.commit()
    return run


def _log(run: JobRun) -> None:
    if run.outcome == Outcome.ERROR:
        log.error("job %s failed after %d ms: %s", run.job, run.duration_ms, (run.error or "").splitlines()[0])
        return
    if run.outcome == Outcome.SKIPPED:
        log.warning("job %s skipped: %s", run.job, (run.summary or {}).get("reason"))
        return
    # Only numbers reach the log, whatever a job puts in its summary.
    counts = {k: v for k, v in (run.summary or {}).items() if isinstance(v, int | float) or v is None}
    log.info("job %s %s in %d ms %s", run.job, run.outcome, run.duration_ms, counts)


def mark_interrupted(host: str, pid: int) -> int:
    """Close the runs a dead scheduler process left open; returns how many."""
    with sqlite_immediate_transactions(), _bookkeeping() as session:
        result = session.execute(
            update(JobRun)
            .where(JobRun.host == host, JobRun.pid == pid, JobRun.finished_at.is_(None),
                   JobRun.source != RunSource.CLI)
            .values(finished_at=utcnow(), outcome=Outcome.ERROR,
                    error="interrupted: the scheduler running it stopped or lost its lease")
        )
        session.commit()
    return result.rowcount


def safe_error(exc: BaseException) -> str:
    """The exception's type (and its database error's type and code: SQLSTATE, SQLITE_BUSY...)
    with the code locations it went through; its message only for a ``SafeJobError``."""
    head = _qualname(exc)
    if isinstance(exc, SafeJobError):
        head += f": {exc}"
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        head += f" from {_qualname(orig)}"
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate:
            head += f" (SQLSTATE {sqlstate})"
        elif getattr(orig, "sqlite_errorname", None):
            head += f" ({orig.sqlite_errorname})"
    # Our own frames tell where it went wrong; of a library's, only the one that raised.
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in Path(f.filename).parts]
    shown = ours[-_TRACE_FRAMES:] + ([frames[-1]] if frames and frames[-1] not in ours else [])
    lines = [f"  {_short_path(f.filename)}:{f.lineno} in {f.name}" for f in shown]
    return "\n".join([head, *lines])


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _short_path(filename: str) -> str:
    path = Path(filename)
    if "site-packages" in path.parts:
        return "/".join(path.parts[path.parts.index("site-packages") + 1:])
    try:
        return str(path.resolve().relative_to(_ROOT))
    except ValueError:
        return path.name


def clean_summary(result: object) -> dict:
    """What a job returned, as JSON: a mapping of counts (anything else is wrapped or named)."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        result = {"result": result}
    return {str(key): _jsonable(value) for key, value in result.items()}


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return f"<{type(value).__name__}>"
