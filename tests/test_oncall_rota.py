"""Rota, gaps, warnings, escalation chain and policy: the services."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEvent
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.triage import oncall
from tests import factories
from tests.oncall_helpers import english  # noqa: F401  (autouse: English texts)
from tests.oncall_helpers import T0, at, shift

H = timedelta(hours=1)


@pytest.fixture()
def c(circuit, db):
    at(0)
    return circuit


def test_touching_and_overnight_shifts_leave_no_gap(c, db):
    day = (T0 + 24 * H).replace(hour=7)  # 08:00 Paris, tomorrow
    shift(c.site, c.oncologist, day, day + 12 * H)
    shift(c.site, c.nurse, day + 12 * H, day + 24 * H)  # 20:00 -> 08:00 next day, over midnight
    assert oncall.rota_gaps(c.site.id, day, day + 24 * H) == []
    # Outside the shifts, the window's edges are gaps; inside, a window is clipped to the shifts.
    assert oncall.rota_gaps(c.site.id, day - 2 * H, day + 26 * H) == [(day - 2 * H, day), (day + 24 * H, day + 26 * H)]
    assert oncall.rota_gaps(c.site.id, day + 3 * H, day + 4 * H) == []


def test_a_gap_between_shifts_is_found(c, db):
    day = (T0 + 24 * H).replace(hour=7)
    shift(c.site, c.oncologist, day, day + 12 * H)
    shift(c.site, c.nurse, day + 13 * H, day + 24 * H)
    assert oncall.rota_gaps(c.site.id, day, day + 24 * H) == [(day + 12 * H, day + 13 * H)]


def test_overlapping_shifts_merge_and_other_sites_do_not_count(c, db):
    day = (T0 + 24 * H).replace(hour=7)
    shift(c.site, c.oncologist, day, day + 10 * H)
    shift(c.site, c.nurse, day + 2 * H, day + 6 * H)
    other = factories.create_professional(Role.ONCOLOGIST, site=c.other_site, phone="+33639980099")
    shift(c.other_site, other, day + 10 * H, day + 20 * H)
    assert oncall.rota_gaps(c.site.id, day, day + 20 * H) == [(day + 10 * H, day + 20 * H)]
    assert oncall.rota_gaps(c.other_site.id, day, day + 20 * H) == [(day, day + 10 * H)]


def test_a_shift_of_someone_who_cannot_be_paged_is_a_gap(c, db):
    day = (T0 + 24 * H).replace(hour=7)
    shift(c.site, c.oncologist, day, day + 12 * H)
    shift(c.site, c.nurse, day + 12 * H, day + 24 * H)
    c.nurse.phone = None
    db.session.flush()
    assert oncall.rota_gaps(c.site.id, day, day + 24 * H) == [(day + 12 * H, day + 24 * H)]
    c.nurse.phone, c.oncologist.active = "+33639980001", False
    db.session.flush()
    assert oncall.rota_gaps(c.site.id, day, day + 24 * H) == [(day, day + 12 * H)]


def test_a_gap_within_72_hours_is_warned_before_it_happens(c, db):
    # Covered for the next 48 h, then nobody from 48 h to 50 h, then covered again.
    shift(c.site, c.oncologist, T0 - H, T0 + 48 * H)
    shift(c.site, c.nurse, T0 + 50 * H, T0 + 200 * H)
    other = factories.create_professional(Role.ONCOLOGIST, site=c.other_site, phone="+33639980099")
    shift(c.other_site, other, T0 - H, T0 + 100 * H)
    warnings = oncall.upcoming_gap_warnings([c.site.id, c.other_site.id], horizon_hours=72)
    assert [(w.site_id, w.site_code, w.starts_at, w.ends_at) for w in warnings] == [
        (c.site.id, "LYN", T0 + 48 * H, T0 + 50 * H)]
    # Still announced an hour before it starts; gone once it is filled.
    at(47 * 60)
    assert len(oncall.upcoming_gap_warnings([c.site.id])) == 1
    stand_in = factories.create_professional(Role.ONCOLOGIST, site=c.site, phone="+33639980098")
    shift(c.site, stand_in, T0 + 48 * H, T0 + 50 * H)
    assert oncall.upcoming_gap_warnings([c.site.id]) == []


def test_a_gap_beyond_the_horizon_is_not_warned_yet(c, db):
    shift(c.site, c.oncologist, T0 - H, T0 + 100 * H)
    assert oncall.upcoming_gap_warnings([c.site.id], horizon_hours=72) == []
    assert [(w.starts_at, w.ends_at) for w in oncall.upcoming_gap_warnings([c.site.id], horizon_hours=120)] == [
        (T0 + 100 * H, T0 + 120 * H)]


def test_shift_validation(c, db):
    def errors(**kw):
        args = {"professional_id": c.oncologist.id, "starts_at": T0 + H, "ends_at": T0 + 5 * H}
        args.update(kw)
        with pytest.raises(ValidationFailed) as exc:
            oncall.add_shift(c.site, **args)
        return exc.value.errors

    assert "ends_at" in errors(ends_at=T0 + H)
    assert "ends_at" in errors(ends_at=T0)
    assert "ends_at" in errors(starts_at=T0 - 5 * H, ends_at=T0 - H)  # already over
    assert "ends_at" in errors(ends_at=T0 + 15 * 24 * H)
    assert "professional_id" in errors(professional_id=c.other_oncologist.id)  # another site
    assert "professional_id" in errors(professional_id=c.hospital_pharmacist.id)  # no phone
    assert "professional_id" in errors(professional_id=None)
    shift(c.site, c.oncologist, T0 + H, T0 + 5 * H)
    assert "starts_at" in errors(starts_at=T0 + 4 * H, ends_at=T0 + 6 * H)  # overlaps their own shift
    shift(c.site, c.oncologist, T0 + 5 * H, T0 + 6 * H)  # touching is fine
    shift(c.site, c.nurse, T0 + 2 * H, T0 + 3 * H)  # someone else at the same time is fine


def test_shift_changes_are_audited(c, db):
    s = shift(c.site, c.oncologist, T0, T0 + H)
    oncall.remove_shift(s)
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("oncall_shift%"))).all()
    assert sorted(actions) == ["oncall_shift_create", "oncall_shift_delete"]


def test_on_call_now_takes_the_earliest_shift_at_a_handover(c, db):
    shift(c.site, c.oncologist, T0 - 10 * H, T0 + H)
    shift(c.site, c.nurse, T0 - H, T0 + 10 * H)
    assert oncall.on_call_now([c.site.id, c.other_site.id]) == {c.site.id: c.oncologist}
    assert oncall.on_call_now([c.site.id], T0 + 2 * H) == {c.site.id: c.nurse}
    assert oncall.on_call_now([c.site.id], T0 + 11 * H) == {}


def test_policy_defaults_and_validation(c, db):
    policy = oncall.effective_policy(c.site.id)
    assert (policy.ack_minutes, policy.fallback_phone, policy.configured) == (30, c.site.hospital_phone, False)
    for minutes in (4, 241, None):
        with pytest.raises(ValidationFailed) as exc:
            oncall.save_policy(c.site, ack_minutes=minutes, fallback_phone="04 72 11 22 33", fallback_label="x")
        assert "ack_minutes" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        oncall.save_policy(c.site, ack_minutes=15, fallback_phone="12", fallback_label="")
    assert set(exc.value.errors) == {"fallback_phone", "fallback_label"}
    oncall.save_policy(c.site, ack_minutes=15, fallback_phone="04 72 11 22 33", fallback_label="Standard")
    policy = oncall.effective_policy(c.site.id)
    assert (policy.ack_minutes, policy.fallback_phone, policy.fallback_label) == (15, "+33472112233", "Standard")


def test_chain_starts_with_the_on_call_person_and_keeps_its_order(c, db):
    assert oncall.chains_for([c.site.id]) == {c.site.id: oncall.DEFAULT_CHAIN}
    step = oncall.add_step(c.site, kind="professional", professional_id=c.nurse.id)
    chain = oncall.chains_for([c.site.id])[c.site.id]
    assert [(s.kind, s.professional_id) for s in chain] == [("on_call", None), ("professional", c.nurse.id)]
    with pytest.raises(ValidationFailed):
        oncall.add_step(c.site, kind="professional", professional_id=c.nurse.id)  # twice
    with pytest.raises(ValidationFailed):
        oncall.add_step(c.site, kind="on_call")  # twice
    with pytest.raises(ValidationFailed):
        oncall.add_step(c.site, kind="professional", professional_id=c.other_oncologist.id)
    oncall.move_step(step, "up")
    chain = oncall.chains_for([c.site.id])[c.site.id]
    assert [s.kind for s in chain] == ["professional", "on_call"]
    with pytest.raises(ValidationFailed):
        oncall.move_step(step, "up")  # already first
    oncall.remove_step(step)
    assert [s.kind for s in oncall.chains_for([c.site.id])[c.site.id]] == ["on_call"]
