"""The on-call administration pages: admins only, validation errors inline, gaps shown."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.triage import oncall
from tests.oncall_helpers import english  # noqa: F401  (autouse: English texts)
from tests.oncall_helpers import T0, at, shift

H = timedelta(hours=1)


@pytest.fixture()
def c(circuit, db):
    at(0)
    return circuit


def _pages(site_id):
    return [f"/admin/oncall/sites/{site_id}/{name}" for name in ("rota", "chain", "policy")]


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'<small class="field-error"[^>]*data-field="{name}">([^<]*)</small>', html)
    return match.group(1) if match else None


@pytest.mark.parametrize("role", ["nurse", "oncologist", "community_pharmacist", "gp"])
def test_non_admins_are_refused(c, db, login, csrf_of, role):
    s = shift(c.site, c.oncologist, T0, T0 + H)
    step = oncall.add_step(c.site, kind="professional", professional_id=c.nurse.id)
    db.session.commit()
    shift_id, step_id = s.id, step.id
    client = login(c.role(role))
    for path in ["/admin/oncall/"] + _pages(c.site.id):
        assert client.get(path).status_code == 403, path
    token = csrf_of(client.get("/", follow_redirects=True).get_data(as_text=True))  # the sign-out form
    base = f"/admin/oncall/sites/{c.site.id}"
    for path, data in [(f"{base}/policy", {"ack_minutes": "10", "fallback_phone": "0472112233",
                                           "fallback_label": "x"}),
                       (f"{base}/rota", {"professional_id": c.nurse.id, "starts_at": "2025-03-11T20:00",
                                         "ends_at": "2025-03-12T08:00"}),
                       (f"{base}/chain", {"kind": "on_call"}),
                       (f"{base}/rota/{shift_id}/delete", {}),
                       (f"{base}/chain/{step_id}/delete", {}),
                       (f"{base}/chain/{step_id}/move", {"direction": "up"})]:
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert oncall.effective_policy(c.site.id).configured is False
    assert len(oncall.shifts_between(c.site.id, T0 - 24 * H, T0 + 72 * H)) == 1
    assert [st.kind for st in oncall.steps_of(c.site.id)] == ["on_call", "professional"]


def test_anonymous_is_sent_to_sign_in(c, db, client):
    for path in ["/admin/oncall/"] + _pages(c.site.id):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_overview_lists_sites_with_their_gaps(c, db, login):
    shift(c.site, c.oncologist, T0 - H, T0 + 48 * H)
    db.session.commit()
    html = login(c.admin).get("/admin/oncall/").get_data(as_text=True)
    assert "LYN" in html and "TRS" in html and c.oncologist.display_name in html
    lyon_row = html[html.index(f'data-id="{c.site.id}"'):html.index(f'data-id="{c.other_site.id}"')]
    assert lyon_row.count('class="late gap"') == 1  # from +48 h to +72 h


def test_every_site_page_warns_of_the_gaps_of_the_next_7_days(c, db, login):
    client = login(c.admin)
    for path in _pages(c.site.id):
        html = client.get(path).get_data(as_text=True)
        assert 'id="rota-gaps"' in html, path
    shift(c.site, c.oncologist, T0 - H, T0 + 7 * 24 * H + H)
    db.session.commit()
    html = client.get(_pages(c.site.id)[0]).get_data(as_text=True)
    assert 'id="rota-gaps"' not in html and 'id="rota-complete"' in html


def test_adding_a_shift_in_site_time(c, db, login, csrf_of):
    client = login(c.admin)
    path = f"/admin/oncall/sites/{c.site.id}/rota"
    token = csrf_of(client.get(path).get_data(as_text=True))
    resp = client.post(path, data={"csrf_token": token, "professional_id": c.oncologist.id,
                                   "starts_at": "2025-03-11T20:00", "ends_at": "2025-03-12T08:00"})
    assert resp.status_code == 302
    [s] = oncall.shifts_between(c.site.id, T0, T0 + 72 * H)
    # Paris is UTC+1 in March before the change to summer time.
    assert (s.starts_at, s.ends_at) == (datetime(2025, 3, 11, 19, tzinfo=timezone.utc),
                                        datetime(2025, 3, 12, 7, tzinfo=timezone.utc))
    assert "8:00\u202fPM" in client.get(path).get_data(as_text=True) or \
        "8:00 PM" in client.get(path).get_data(as_text=True)  # shown in site time (English format)


@pytest.mark.parametrize("data, field", [
    ({"starts_at": "2025-03-11T20:00", "ends_at": "2025-03-11T19:00"}, "ends_at"),
    ({"starts_at": "2025-03-11T20:00", "ends_at": "not a date"}, "ends_at"),
    ({"starts_at": "2025-03-11T20:00", "ends_at": "2025-03-12T08:00", "who": "other_oncologist"}, "professional_id"),
    ({"starts_at": "2025-03-11T20:00", "ends_at": "2025-03-12T08:00", "who": "hospital_pharmacist"},
     "professional_id"),
    ({"starts_at": "2025-03-11T07:00", "ends_at": "2025-03-11T09:00"}, "starts_at"),  # overlaps
])
def test_shift_errors_are_shown_beside_their_field(c, db, login, csrf_of, data, field):
    shift(c.site, c.oncologist, datetime(2025, 3, 11, 6, tzinfo=timezone.utc),
          datetime(2025, 3, 11, 7, tzinfo=timezone.utc))
    db.session.commit()
    client = login(c.admin)
    path = f"/admin/oncall/sites/{c.site.id}/rota"
    token = csrf_of(client.get(path).get_data(as_text=True))
    who = c.role(data.pop("who", "oncologist"))
    resp = client.post(path, data={"csrf_token": token, "professional_id": who.id, **data})
    assert resp.status_code == 422
    assert _field_error(resp.get_data(as_text=True), field), resp.get_data(as_text=True)
    assert len(oncall.shifts_between(c.site.id, T0 - 24 * H, T0 + 72 * H)) == 1


def test_removing_a_shift(c, db, login, csrf_of):
    s = shift(c.site, c.oncologist, T0, T0 + H)
    db.session.commit()
    shift_id = s.id
    client = login(c.admin)
    token = csrf_of(client.get(f"/admin/oncall/sites/{c.site.id}/rota").get_data(as_text=True))
    assert client.post(f"/admin/oncall/sites/{c.other_site.id}/rota/{s.id}/delete",
                       data={"csrf_token": token}).status_code == 404  # not that site's shift
    assert client.post(f"/admin/oncall/sites/{c.site.id}/rota/{s.id}/delete",
                       data={"csrf_token": token}).status_code == 302
    assert db.session.scalar(select(oncall.OnCallShift).where(oncall.OnCallShift.id == shift_id)) is None


def test_editing_the_chain(c, db, login, csrf_of):
    client = login(c.admin)
    path = f"/admin/oncall/sites/{c.site.id}/chain"
    html = client.get(path).get_data(as_text=True)
    assert "Whoever is on call" in html
    token = csrf_of(html)
    assert client.post(path, data={"csrf_token": token, "kind": "professional",
                                   "professional_id": c.nurse.id}).status_code == 302
    resp = client.post(path, data={"csrf_token": token, "kind": "professional", "professional_id": c.nurse.id})
    assert resp.status_code == 422 and _field_error(resp.get_data(as_text=True), "professional_id")
    resp = client.post(path, data={"csrf_token": token, "kind": "professional", "professional_id": ""})
    assert resp.status_code == 422 and _field_error(resp.get_data(as_text=True), "professional_id")
    steps = oncall.steps_of(c.site.id)
    assert [s.kind for s in steps] == ["on_call", "professional"]
    assert client.post(f"{path}/{steps[1].id}/move", data={"csrf_token": token, "direction": "up"}).status_code == 302
    db.session.expire_all()
    assert [s.kind for s in oncall.steps_of(c.site.id)] == ["professional", "on_call"]
    assert client.post(f"{path}/{steps[0].id}/delete", data={"csrf_token": token}).status_code == 302
    assert [s.kind for s in oncall.steps_of(c.site.id)] == ["professional"]


def test_editing_the_policy(c, db, login, csrf_of):
    client = login(c.admin)
    path = f"/admin/oncall/sites/{c.site.id}/policy"
    html = client.get(path).get_data(as_text=True)
    token = csrf_of(html)
    deadlines = {"orange_working_hours": "8", "yellow_days": "7", "workday_start": "8", "workday_end": "18"}
    resp = client.post(path, data={"csrf_token": token, "ack_minutes": "4", "fallback_phone": "12",
                                   "fallback_label": "Standard", **deadlines, "workday_end": "7"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert _field_error(html, "ack_minutes") and _field_error(html, "fallback_phone")
    assert _field_error(html, "workday_end")
    resp = client.post(path, data={"csrf_token": token, "ack_minutes": "15", "fallback_phone": "04 72 11 22 33",
                                   "fallback_label": "Standard", **deadlines, "orange_working_hours": "6"})
    assert resp.status_code == 302
    policy = db.session.scalar(select(oncall.EscalationPolicy).where(oncall.EscalationPolicy.site_id == c.site.id))
    assert (policy.ack_minutes, policy.fallback_phone, policy.orange_working_hours) == (15, "+33472112233", 6)


def test_unknown_site_is_404(c, db, login):
    assert login(c.admin).get("/admin/oncall/sites/999999/rota").status_code == 404
