"""Real browser (Debian chromium through Playwright): the nurse's and the pharmacist's paths."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.care.models import Patient
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_nurse_finds_a_patient_then_enrols_one_correcting_an_inline_error(page, circuit, db):
    browser_login(page, circuit.nurse)
    expect(page.locator("h1")).to_have_text("File de triage")  # the nurse lands on the work queue
    page.click("#nav-patients")
    expect(page.locator("h1")).to_have_text("Patients")
    page.fill("#search-q", "dur")
    page.click("#search-submit")
    rows = page.locator("#patient-list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("a").click()
    expect(page.locator("#patient-name")).to_have_text("DURAND Marie")
    expect(page.locator("#care-team")).to_contain_text(circuit.gp.last_name)

    page.goto("/")
    page.click("#enrol-link")
    page.fill("#last_name", "Petit")
    page.fill("#first_name", "Louise")
    page.fill("#birth_date", "1961-04-09")
    page.fill("#mrn", "LYN4242")
    page.fill("#phone", "01 23")  # not a valid number
    page.check("#consent_given")
    palbociclib = page.locator("#drug_id option", has_text="palbociclib").get_attribute("value")
    page.select_option("#drug_id", palbociclib)
    page.fill("#dose", "125 mg")
    page.select_option("#prescriber_id", str(circuit.oncologist.id))
    page.click("#enrol-submit")

    error = page.locator('[data-field="phone"]')
    expect(error).to_be_visible()
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    # What was typed is kept; only the wrong field needs fixing.
    expect(page.locator("#last_name")).to_have_value("Petit")
    page.fill("#phone", "06 98 76 54 32")
    page.click("#enrol-submit")
    expect(page.locator("#patient-name")).to_have_text("PETIT Louise")
    expect(page.locator("#prescriptions")).to_contain_text("palbociclib")
    db.session.rollback()  # end the test session's snapshot to see what the server committed
    patient = db.session.scalar(select(Patient).where(Patient.mrn == "LYN4242"))
    assert patient.phone == "+33698765432"


def test_community_pharmacist_cannot_see_a_patient_outside_their_care_teams(page, circuit):
    browser_login(page, circuit.community_pharmacist)
    table = page.locator("#patient-list")
    expect(table).to_contain_text("DURAND")
    expect(table).not_to_contain_text("LEFEVRE")
    expect(table).not_to_contain_text("MOREAU")
    response = page.goto(f"/patients/{circuit.patient_no_team.id}")
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text("LEFEVRE")


def test_nurse_pages_fit_a_phone_screen(phone_page, circuit):
    browser_login(phone_page, circuit.nurse)
    for path in ("/", "/triage", f"/patients/{circuit.patient.id}", "/patients/new",
                 f"/patients/{circuit.patient.id}/summary", f"/patients/{circuit.patient.id}/calls/new"):
        phone_page.goto(path)
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways on a phone ({width}px)"
    phone_page.goto("/")
    expect(phone_page.locator("#patient-list")).to_contain_text("DURAND")
