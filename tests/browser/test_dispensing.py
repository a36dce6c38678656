"""Real browser on a phone-sized screen: a community pharmacist records a dispensing, sees the
days of supply computed as they type, and is stopped by the duplicate warning on a second
identical entry."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.adherence.models import Dispensing
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def _fill(page, patient_id):
    page.goto(f"/patients/{patient_id}/dispensings/new")
    expect(page.locator("#drug_id option:checked")).to_contain_text("capecitabine")  # the current prescription
    page.fill("#strength", "500 mg")
    page.fill("#quantity", "56")


def _count(db):
    db.session.rollback()  # see what the server committed
    return db.session.scalar(select(func.count()).select_from(Dispensing))


def test_pharmacist_records_a_dispensing_on_a_phone(phone_page, circuit, db):
    page, patient = phone_page, circuit.patient
    browser_login(page, circuit.community_pharmacist)
    _fill(page, patient.id)
    # 1000 mg twice a day with 500 mg tablets: 4 a day, 56 tablets = 14 treatment days = 1 cycle.
    expect(page.locator("#days_supply")).to_have_value("14")
    expect(page.locator("#days-supply-computed")).to_contain_text("14")
    # The form fits the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.click("#dispensing-submit")
    expect(page.locator("#patient-name")).to_be_visible()
    expect(page.locator("#dispensing-list tbody tr")).to_have_count(1)
    expect(page.locator("#dispensing-list")).to_contain_text("56")
    assert _count(db) == 1

    # The same entry again: refused with the duplicate warning and a box to confirm.
    _fill(page, patient.id)
    page.click("#dispensing-submit")
    expect(page.locator('[data-warning="duplicate"]')).to_be_visible()
    expect(page.locator("#confirm")).to_be_visible()
    assert _count(db) == 1
    # Confirming records it, marked as such.
    page.check("#confirm")
    page.click("#dispensing-submit")
    expect(page.locator("#dispensing-list tbody tr")).to_have_count(2)
    assert _count(db) == 2
