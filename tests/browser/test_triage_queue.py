"""A nurse works a red alert in the browser: queue -> acknowledge -> call -> resolve with a note."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.triage import services
from app.triage.models import Alert
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_nurse_acknowledges_records_a_call_and_resolves_a_red_alert(page, circuit, db):
    alert = services.raise_alert(patient_id=circuit.patient.id, severity="red", source="checkin",
                                 reason_code="fever", summary="Temperature 39.1 at check-in")
    services.raise_alert(patient_id=circuit.patient_no_team.id, severity="yellow", source="checkin",
                         reason_code="fatigue_grade_1", summary="Fatigue grade 1")
    db.session.commit()
    browser_login(page, circuit.nurse)
    rows = page.locator("#triage-queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Temperature 39.1")  # red first
    expect(page.locator('[data-count="red"]')).to_have_text("1")
    rows.first.locator("a").click()

    page.click("#acknowledge")
    expect(page.locator("#alert-status")).to_have_text("Pris en charge")
    page.select_option("#kind", "call")
    page.fill("#action-form textarea[name=note]", "Appelée : 39,1 °C, frissons. Adressée aux urgences.")
    page.click("#record-action")
    expect(page.locator("#alert-history")).to_contain_text("Adressée aux urgences")

    page.click("#resolve")  # without a note: refused, stays acknowledged
    expect(page.locator("#alert-status")).to_have_text("Pris en charge")
    page.fill("#resolve-form textarea[name=note]", "Hospitalisée, neutropénie fébrile confirmée.")
    page.click("#resolve")
    expect(page.locator("#alert-status")).to_have_text("Résolue")
    db.session.rollback()
    assert db.session.get(Alert, alert.id).resolution_note.startswith("Hospitalisée")
