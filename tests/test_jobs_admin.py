"""The admin jobs page: every job with its last run, and the active scheduler; admins only."""
from __future__ import annotations

from app.jobs import lease
from app.jobs.registry import JOBS
from app.jobs.runner import run_job
from tests.jobs_for_tests import clear_scheduler_state


def test_admin_sees_each_job_with_last_run_outcome_summary_and_the_lease_holder(app, circuit, login, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests")
    clear_scheduler_state()
    run_job("succeed")
    run_job("fail")
    lease.acquire("sched-host:31337:feed01", 30)

    response = login(circuit.admin).get("/admin/jobs/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<div class="overflow-auto">' in html
    assert 'data-job="succeed"' in html and 'data-job="tick"' in html
    assert 'data-outcome="ok"' in html and "rows: 3" in html and "state: fine" in html
    assert 'data-outcome="error"' in html and "ValueError" in html and "DURAND" not in html
    assert "sched-host:31337:feed01" in html
    assert response.headers["Content-Type"].startswith("text/html")


def test_page_lists_the_platform_jobs_and_warns_when_no_scheduler_runs(circuit, login):
    clear_scheduler_state()
    html = login(circuit.admin).get("/admin/jobs/").get_data(as_text=True)
    for name in JOBS:
        assert f'data-job="{name}"' in html
    assert 'role="alert"' in html and "sched-host" not in html


def test_non_admins_are_refused(circuit, login, client):
    assert client.get("/admin/jobs/").status_code in (302, 401)
    for user in (circuit.nurse, circuit.oncologist, circuit.community_pharmacist):
        assert login(user).get("/admin/jobs/").status_code == 403
