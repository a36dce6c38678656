"""The demo loop in a real browser: a patient answers on the phone simulator, the nurse reads it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.notifications.tasks import dispatch_outbox
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_patient_answers_on_the_phone_page_and_the_nurse_sees_the_answers(page, circuit, db, app):
    browser_login(page, circuit.nurse)
    page.goto(f"/dev/phone/{circuit.patient.id}")
    page.click("#start-checkin")
    expect(page.locator(".flash-info")).to_be_visible()  # the POST and its redirect are done
    db.session.rollback()
    assert dispatch_outbox(time_budget_s=5)["sent"] == 1  # the scheduler's job, run once
    page.reload()
    first = page.locator('#phone-thread [data-direction="out"]').last
    expect(first).to_contain_text("combien de prises")

    for answer in ("0", "37,2", "1"):
        page.fill("#body", answer)
        page.click("#reply-send")
        expect(page.locator('#phone-thread [data-direction="in"]').last).to_contain_text(answer)
    expect(page.locator('#phone-thread [data-direction="out"]').last).to_contain_text("?")

    page.goto(f"/patients/{circuit.patient.id}")
    checkin = page.locator("#checkins details.checkin").first
    expect(checkin).to_contain_text("37,2")
    expect(checkin).to_contain_text("37.2")     # the parsed value beside the raw text
    expect(checkin.locator("tbody tr")).to_have_count(3)
