"""The job runner through ``flask jobs run|list``: every run recorded, failures contained and
recorded without the exception's message, unknown or not-yet-installed jobs handled."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.time import set_clock, utcnow
from app.jobs.models import JobRun, SchedulerLease
from app.jobs.registry import JOBS, Cron, Every
from app.jobs.runner import clean_summary, run_job
from tests.jobs_for_tests import HEALTH_DATA, clear_scheduler_state


@pytest.fixture()
def test_jobs(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests")
    clear_scheduler_state()
    return app.test_cli_runner()


def _runs(db, name):
    db.session.rollback()
    return db.session.scalars(select(JobRun).where(JobRun.job == name).order_by(JobRun.id)).all()


def test_cli_run_records_outcome_and_summary(test_jobs, db):
    result = test_jobs.invoke(args=["jobs", "run", "succeed"])
    assert result.exit_code == 0, result.output
    assert "succeed: ok" in result.output and '"rows": 3' in result.output
    [run] = _runs(db, "succeed")
    assert run.outcome == "ok"
    assert run.summary == {"rows": 3, "state": "fine"}
    assert run.source == "cli"
    assert run.started_at <= run.finished_at and run.duration_ms >= 0
    assert run.pid == os.getpid() and run.host
    assert run.error is None


def test_failing_job_is_recorded_without_its_message_and_the_runner_goes_on(test_jobs, db, caplog):
    caplog.set_level(logging.DEBUG)
    result = test_jobs.invoke(args=["jobs", "run", "fail"])
    assert result.exit_code == 1
    [run] = _runs(db, "fail")
    assert run.outcome == "error" and run.finished_at is not None
    assert run.error.startswith("ValueError")
    assert "tests/jobs_for_tests.py" in run.error and "in fail" in run.error
    for secret in ("DURAND", "+33612345678", "diarrhoea"):
        assert secret not in run.error
        assert secret not in result.output
        assert secret not in caplog.text
    assert any(r.levelno == logging.ERROR and "fail" in r.getMessage() for r in caplog.records)

    again = test_jobs.invoke(args=["jobs", "run", "succeed"])
    assert again.exit_code == 0
    assert [r.outcome for r in _runs(db, "succeed")] == ["ok"]


def test_failed_job_work_is_rolled_back_but_its_run_is_kept(test_jobs, db):
    result = test_jobs.invoke(args=["jobs", "run", "write-then-fail"])
    assert result.exit_code == 1
    [run] = _runs(db, "write-then-fail")
    assert run.outcome == "error" and run.error.startswith("RuntimeError")
    assert HEALTH_DATA not in run.error
    assert db.session.scalar(select(SchedulerLease).where(SchedulerLease.name == "written-by-a-failing-job")) is None


def test_job_of_a_part_not_installed_is_skipped(test_jobs, db):
    result = test_jobs.invoke(args=["jobs", "run", "not-installed"])
    assert result.exit_code == 0
    [run] = _runs(db, "not-installed")
    assert run.outcome == "skipped" and run.summary == {"reason": "job not installed"}


def test_job_whose_function_is_missing_is_an_error(test_jobs, db):
    result = test_jobs.invoke(args=["jobs", "run", "broken-target"])
    assert result.exit_code == 1
    [run] = _runs(db, "broken-target")
    assert run.outcome == "error" and run.error.startswith("AttributeError")


def test_unknown_job_is_refused_and_not_recorded(test_jobs, db):
    result = test_jobs.invoke(args=["jobs", "run", "no-such-job"])
    assert result.exit_code == 2
    assert "unknown job" in result.output
    assert _runs(db, "no-such-job") == []


def test_list_shows_schedule_last_run_and_outcome(test_jobs, db):
    test_jobs.invoke(args=["jobs", "run", "fail"])
    result = test_jobs.invoke(args=["jobs", "list"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(lines) == {"succeed", "fail", "write-then-fail", "tick", "not-installed", "broken-target"}
    from tests.jobs_for_tests import JOBS as TEST_JOBS

    assert TEST_JOBS["tick"].trigger.describe() in lines["tick"]  # "every 2 s", in the app's language
    assert "2 s" in lines["tick"]
    assert "error" in lines["fail"] and utcnow().strftime("%Y-%m-%d") in lines["fail"]
    assert lines["succeed"].split()[-2:] == ["-", "-"]  # never run, never scheduled


def test_run_times_follow_the_fixed_clock(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests")
    from datetime import datetime, timezone

    when = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    set_clock(when)
    run = run_job("succeed")
    assert run.started_at == when and run.finished_at == when


def test_prune_keeps_recent_runs_and_the_last_of_each_job(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests")
    now = utcnow()
    set_clock(now - timedelta(days=30))
    old_ok = run_job("succeed")
    old_fail_1 = run_job("fail")
    old_fail_2 = run_job("fail")
    set_clock(now)
    recent = run_job("succeed")
    monkeypatch.setitem(app.config, "JOBS_MODULE", None)
    pruned = run_job("prune-job-runs")
    assert pruned.outcome == "ok" and pruned.summary == {"deleted": 2}
    kept = {r.id for r in db.session.scalars(select(JobRun))}
    assert old_ok.id not in kept and old_fail_1.id not in kept
    assert {old_fail_2.id, recent.id, pruned.id} <= kept


def test_summaries_are_stored_as_json():
    from datetime import date

    assert clean_summary(None) == {}
    assert clean_summary(7) == {"result": 7}
    assert clean_summary({"n": 1, "day": date(2030, 1, 2), "ids": (1, 2), "obj": object()}) == {
        "n": 1, "day": "2030-01-02", "ids": [1, 2], "obj": "<object>"}


def test_registry_has_the_platform_jobs_on_their_schedules():
    expected = {
        "plan-checkins": ("app.pathways.checkins.tasks:plan_checkins", 15 * 60),
        "start-checkins": ("app.pathways.checkins.tasks:start_due_checkins", 60),
        "dispatch-outbox": ("app.notifications.tasks:dispatch_outbox", 5),
        "chase-non-responders": ("app.pathways.checkins.tasks:chase_non_responders", 15 * 60),
        "escalate-alerts": ("app.triage.tasks:escalate_alerts", 60),
    }
    for name, (target, seconds) in expected.items():
        spec = JOBS[name]
        assert spec.name == name and spec.target == target
        assert spec.trigger == Every(seconds)
        assert spec.grace_seconds >= seconds  # a coalesced catch-up run is never dropped
        assert str(spec.description)
    assert isinstance(JOBS["prune-job-runs"].trigger, Cron)
