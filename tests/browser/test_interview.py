"""A community pharmacist records the initial pharmaceutical interview from a phone."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.community.models import PharmacistInterview
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_pharmacist_records_an_interview_on_a_phone(phone_page, circuit, db):
    page = phone_page
    browser_login(page, circuit.community_pharmacist)
    page.goto(f"/patients/{circuit.patient.id}/interviews/new?kind=initial")
    questions = page.locator("#interview-form fieldset[data-question]")
    count = questions.count()
    assert count >= 3
    page.click("#interview-submit")  # nothing answered: inline errors, nothing written
    expect(page.locator(".field-error").first).to_be_visible()
    for i in range(count):
        questions.nth(i).locator("input[type=radio]").first.check()
    page.click("#interview-submit")
    expect(page.locator(".flash-success")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width}px)"
    db.session.rollback()
    (interview,) = db.session.scalars(select(PharmacistInterview)).all()
    assert interview.kind == "initial" and interview.pharmacist_id == circuit.community_pharmacist.id
