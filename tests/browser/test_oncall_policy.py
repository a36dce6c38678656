"""An admin saves an escalation policy with a landline as a step paged by text message and gets a
clear refusal, in French and in English; a call is accepted."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.triage import oncall
from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_an_admin_is_told_a_landline_cannot_receive_text_pages(page, circuit, db):
    browser_login(page, circuit.admin)
    page.goto(f"/admin/oncall/sites/{circuit.site.id}/policy")
    page.fill("#fallback_phone", "04 72 11 22 33")  # the switchboard: a landline
    page.fill("#fallback_label", "Standard")
    page.select_option("#fallback_channel", "sms")
    page.click("#policy-form button[type=submit]")

    error = page.locator('small.field-error[data-field="fallback_channel"]')
    expect(error).to_contain_text("n'est pas un portable")
    expect(error).to_contain_text("ne peut pas recevoir de SMS")
    expect(page.locator("#fallback_channel")).to_have_attribute("aria-invalid", "true")
    db.session.rollback()
    assert oncall.effective_policy(circuit.site.id).configured is False  # nothing saved

    with page.expect_navigation():
        page.click('button[lang="en"]')  # the language switch of the page
    page.fill("#fallback_phone", "04 72 11 22 33")
    page.fill("#fallback_label", "Switchboard")
    page.select_option("#fallback_channel", "sms")
    page.click("#policy-form button[type=submit]")
    expect(page.locator('small.field-error[data-field="fallback_channel"]')).to_contain_text(
        "cannot receive text messages")

    page.select_option("#fallback_channel", "voice")  # the same number, called: accepted
    page.click("#policy-form button[type=submit]")
    expect(page.locator(".flash-success")).to_be_visible()
    db.session.rollback()
    policy = oncall.effective_policy(circuit.site.id)
    assert (policy.fallback_phone, policy.fallback_channel) == ("+33472112233", "voice")
