"""Real browser on a phone-sized screen: a GP records a visit with a grade 3 side effect, then the
site's coordinating nurse signs in on the same phone and finds the red alert at the top of triage."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.community.models import Visit
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_gp_visit_with_grade_3_reaches_the_nurse_triage(phone_page, circuit, db):
    page, patient = phone_page, circuit.patient
    browser_login(page, circuit.gp)
    page.goto(f"/patients/{patient.id}/visits/new")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # fits the phone's width
    page.select_option("#kind", "home")
    page.fill("#temperature", "37,4")
    page.select_option("#side_effects-0-symptom", "diarrhoea")
    page.fill("#side_effects-0-grade", "3")
    page.fill("#actions_taken", "Loperamide started, capecitabine paused")
    page.click("#visit-submit")
    expect(page.locator("#patient-name")).to_be_visible()
    expect(page.locator("#visit-list tbody tr")).to_have_count(1)
    db.session.rollback()
    visit = db.session.scalar(select(Visit))
    assert visit.alert_id is not None and visit.temperature == 37.4

    page.click("#logout")
    page.wait_for_load_state()
    browser_login(page, circuit.nurse)
    page.goto("/triage")
    first = page.locator("#triage-queue tbody tr").first
    expect(first).to_have_attribute("data-alert", str(visit.alert_id))
    expect(first.locator(".sev-red")).to_be_visible()
    expect(first).to_contain_text("grade 3 diarrhoea")
    expect(first).to_contain_text(circuit.gp.display_name)
