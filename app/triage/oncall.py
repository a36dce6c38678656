"""On-call rota, escalation chain and escalation policy of a hospital site.

The chain of a site is its ordered steps: "whoever is on call now" or a named
professional. A site without steps uses the default chain: the on-call person only.
After the last step comes the site's fallback number (e.g. the switchboard), paged
again every ``ack_minutes`` until someone acknowledges.

Every step is paged by text, by voice call or both; the fallback by default by a call when its
number is not a mobile. Saving a step, a shift or the policy refuses a number that cannot
receive the channel it is given (``oncall_channels``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.care.models import Professional, Site
from app.core import audit
from app.core.db import UTCDateTime
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.core.validators import normalise_phone
from app.extensions import db

from .oncall_channels import PageChannel, refusal

DEFAULT_ACK_MINUTES = 30
ACK_MINUTES_RANGE = (5, 240)
MAX_SHIFT = timedelta(days=14)
MAX_ROTA_AHEAD = timedelta(days=366)  # shifts looked at when the on-call step's channel changes
MAX_STEPS = 10


class StepKind(StrEnum):
    ON_CALL = "on_call"
    PROFESSIONAL = "professional"


class OutOfHours(StrEnum):
    """What an orange alert carrying an instruction to the patient does outside working hours."""

    PAGE = "page"  # page the on-call chain at once (default)
    WAIT = "wait"  # wait for the next working hours (its deadline)


class OnCallShift(db.Model):
    """One professional on call at a site from ``starts_at`` to ``ends_at`` (UTC, end excluded)."""

    __tablename__ = "oncall_shift"

    id = db.Column(db.Integer, primary_key=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False)
    starts_at = db.Column(UTCDateTime(), nullable=False)
    ends_at = db.Column(UTCDateTime(), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    professional = db.relationship("Professional")

    __table_args__ = (
        db.CheckConstraint("ends_at > starts_at", name="order"),
        db.Index("ix_oncall_shift_site_ends", "site_id", "ends_at"),
        db.Index("ix_oncall_shift_professional_ends", "professional_id", "ends_at"),
    )

    def __repr__(self) -> str:
        return f"<OnCallShift {self.id} site={self.site_id} professional={self.professional_id}>"


class EscalationPolicy(db.Model):
    __tablename__ = "escalation_policy"

    id = db.Column(db.Integer, primary_key=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False, unique=True)
    ack_minutes = db.Column(db.Integer, nullable=False, default=DEFAULT_ACK_MINUTES)
    fallback_phone = db.Column(db.String(20), nullable=False)
    fallback_label = db.Column(db.String(80), nullable=False)
    # Deadlines of the other severities (DESIGN.md section 8): orange in working hours.
    orange_working_hours = db.Column(db.Integer, nullable=False, default=8, server_default="8")
    yellow_days = db.Column(db.Integer, nullable=False, default=7, server_default="7")
    workday_start = db.Column(db.Integer, nullable=False, default=8, server_default="8")
    workday_end = db.Column(db.Integer, nullable=False, default=18, server_default="18")
    # How the fallback is paged; "auto": by a call when its number is not a mobile.
    fallback_channel = db.Column(db.String(5), nullable=False, default=PageChannel.AUTO, server_default="auto")
    out_of_hours_orange = db.Column(db.String(5), nullable=False, default=OutOfHours.PAGE, server_default="page")
    # Public holidays of the working-hours clock (the ``holidays`` library's country and subdivision).
    holiday_country = db.Column(db.String(2), nullable=False, default="FR", server_default="FR")
    holiday_subdivision = db.Column(db.String(10))
    # Who is told when the platform itself fails, how, and after how long.
    tech_contact_phone = db.Column(db.String(20))
    tech_contact_channel = db.Column(db.String(5), nullable=False, default=PageChannel.SMS, server_default="sms")
    fault_delay_minutes = db.Column(db.Integer, nullable=False, default=5, server_default="5")
    updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        db.CheckConstraint("ack_minutes BETWEEN 5 AND 240", name="ack_minutes"),
        db.CheckConstraint("workday_start < workday_end", name="workday"),
        db.CheckConstraint("fallback_channel IN ('auto', 'sms', 'voice', 'both')", name="fallback_channel"),
        db.CheckConstraint("out_of_hours_orange IN ('page', 'wait')", name="out_of_hours_orange"),
        db.CheckConstraint("tech_contact_channel IN ('sms', 'voice', 'both')", name="tech_contact_channel"),
        db.CheckConstraint("fault_delay_minutes BETWEEN 1 AND 240", name="fault_delay_minutes"),
    )

    def __repr__(self) -> str:
        return f"<EscalationPolicy site={self.site_id} {self.ack_minutes}min>"


class EscalationStep(db.Model):
    __tablename__ = "escalation_step"

    id = db.Column(db.Integer, primary_key=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    position = db.Column(db.Integer, nullable=False)
    kind = db.Column(db.String(15), nullable=False)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    channel = db.Column(db.String(5), nullable=False, default=PageChannel.SMS, server_default="sms")

    professional = db.relationship("Professional")

    __table_args__ = (
        db.UniqueConstraint("site_id", "position", name="uq_escalation_step_site_position"),
        db.CheckConstraint("channel IN ('sms', 'voice', 'both')", name="channel"),
        db.CheckConstraint(
            "(kind = 'on_call' AND professional_id IS NULL) OR "
            "(kind = 'professional' AND professional_id IS NOT NULL)", name="kind"),
    )

    def __repr__(self) -> str:
        return f"<EscalationStep site={self.site_id} #{self.position} {self.kind}>"


@dataclass(frozen=True)
class Policy:
    """The policy in force at a site (its row, or the defaults: the hospital line, unlabelled, as fallback)."""

    site_id: int
    ack_minutes: int
    fallback_phone: str
    fallback_label: str
    configured: bool
    orange_working_hours: int = 8
    yellow_days: int = 7
    workday_start: int = 8
    workday_end: int = 18
    fallback_channel: str = PageChannel.AUTO
    out_of_hours_orange: str = OutOfHours.PAGE
    holiday_country: str = "FR"
    holiday_subdivision: str | None = None
    tech_contact_phone: str | None = None
    tech_contact_channel: str = PageChannel.SMS
    fault_delay_minutes: int = 5


@dataclass(frozen=True)
class ChainStep:
    kind: str
    professional_id: int | None = None
    channel: str = PageChannel.SMS


DEFAULT_CHAIN = (ChainStep(StepKind.ON_CALL),)


# --- policy ----------------------------------------------------------------------------------

def policies_for(site_ids) -> dict[int, Policy]:
    """Policies in force for these sites (one query for the rows, one for the defaults)."""
    site_ids = list(site_ids)
    rows = {p.site_id: p for p in db.session.scalars(
        select(EscalationPolicy).where(EscalationPolicy.site_id.in_(site_ids)))}
    result = {sid: Policy(sid, r.ack_minutes, r.fallback_phone, r.fallback_label, True, r.orange_working_hours,
                          r.yellow_days, r.workday_start, r.workday_end, r.fallback_channel, r.out_of_hours_orange,
                          r.holiday_country, r.holiday_subdivision, r.tech_contact_phone, r.tech_contact_channel,
                          r.fault_delay_minutes)
              for sid, r in rows.items()}
    missing = [sid for sid in site_ids if sid not in rows]
    if missing:
        for sid, phone in db.session.execute(select(Site.id, Site.hospital_phone).where(Site.id.in_(missing))):
            result[sid] = Policy(sid, DEFAULT_ACK_MINUTES, phone, "", False)  # label: the pages say "hospital line"
    return result


def effective_policy(site_id: int) -> Policy:
    return policies_for([site_id])[site_id]


def save_policy(site: Site, *, ack_minutes, fallback_phone: str, fallback_label: str,
                region: str = "FR", orange_working_hours: int = 8, yellow_days: int = 7,
                workday_start: int = 8, workday_end: int = 18, fallback_channel: str = PageChannel.AUTO,
                out_of_hours_orange: str = OutOfHours.PAGE, holiday_country: str = "FR",
                holiday_subdivision: str | None = None, tech_contact_phone: str | None = None,
                tech_contact_channel: str = PageChannel.SMS, fault_delay_minutes: int = 5) -> EscalationPolicy:
    errors: dict[str, str] = {}
    if fallback_channel not in set(PageChannel):
        errors["fallback_channel"] = _("Choose how the fallback number is paged.")
    if out_of_hours_orange not in set(OutOfHours):
        errors["out_of_hours_orange"] = _("Choose what happens out of hours.")
    holiday_country = (holiday_country or "").strip().upper()
    holiday_subdivision = (holiday_subdivision or "").strip() or None
    from .out_of_hours import holiday_calendar_error

    if (problem := holiday_calendar_error(holiday_country, holiday_subdivision)) is not None:
        errors["holiday_subdivision" if holiday_subdivision else "holiday_country"] = problem
    if tech_contact_channel not in (PageChannel.SMS, PageChannel.VOICE, PageChannel.BOTH):
        errors["tech_contact_channel"] = _("Choose how the technical contact is told.")
    if not isinstance(fault_delay_minutes, int) or not 1 <= fault_delay_minutes <= 240:
        errors["fault_delay_minutes"] = _("Between %(low)s and %(high)s minutes.", low=1, high=240)
    tech_phone = None
    if (tech_contact_phone or "").strip():
        try:
            tech_phone = normalise_phone(tech_contact_phone, region)
        except ValueError as exc:
            errors["tech_contact_phone"] = str(exc)
        else:
            if (problem := refusal(tech_contact_channel, tech_phone)) is not None:
                errors["tech_contact_channel"] = problem
    if not isinstance(orange_working_hours, int) or not 1 <= orange_working_hours <= 40:
        errors["orange_working_hours"] = _("Between %(low)s and %(high)s hours.", low=1, high=40)
    if not isinstance(yellow_days, int) or not 1 <= yellow_days <= 30:
        errors["yellow_days"] = _("Between %(low)s and %(high)s days.", low=1, high=30)
    if not (isinstance(workday_start, int) and isinstance(workday_end, int) and 0 <= workday_start < workday_end <= 24):
        errors["workday_end"] = _("The working day must end after it starts (hours 0 to 24).")
    low, high = ACK_MINUTES_RANGE
    if not isinstance(ack_minutes, int) or not low <= ack_minutes <= high:
        errors["ack_minutes"] = _("Between %(low)s and %(high)s minutes.", low=low, high=high)
    try:
        phone = normalise_phone(fallback_phone or "", region)
    except ValueError as exc:
        errors["fallback_phone"] = str(exc)
    else:
        if (problem := refusal(fallback_channel, phone)) is not None:
            errors["fallback_channel"] = problem
    label = (fallback_label or "").strip()
    if not label:
        errors["fallback_label"] = _("Say who answers this number, e.g. the switchboard.")
    elif len(label) > 80:
        errors["fallback_label"] = _("At most 80 characters.")
    if errors:
        raise ValidationFailed(errors)
    policy = db.session.scalar(select(EscalationPolicy).where(EscalationPolicy.site_id == site.id))
    if policy is None:
        policy = EscalationPolicy(site_id=site.id)
        db.session.add(policy)
    policy.ack_minutes, policy.fallback_phone, policy.fallback_label = ack_minutes, phone, label
    policy.orange_working_hours, policy.yellow_days = orange_working_hours, yellow_days
    policy.workday_start, policy.workday_end = workday_start, workday_end
    policy.fallback_channel, policy.out_of_hours_orange = fallback_channel, out_of_hours_orange
    policy.holiday_country, policy.holiday_subdivision = holiday_country, holiday_subdivision
    policy.tech_contact_phone, policy.tech_contact_channel = tech_phone, tech_contact_channel
    policy.fault_delay_minutes = fault_delay_minutes
    db.session.flush()
    audit.record("escalation_policy_update", obj=policy, detail={"site_id": site.id, "ack_minutes": ack_minutes})
    return policy


# --- rota ------------------------------------------------------------------------------------

def pageable_professionals(site_id: int) -> list[Professional]:
    """Active professionals of the site who have a phone: those who can be on call or paged."""
    return list(db.session.scalars(
        select(Professional).where(Professional.site_id == site_id, Professional.active.is_(True),
                                   Professional.phone.is_not(None), Professional.phone != "")
        .order_by(Professional.last_name, Professional.first_name)))


def _pageable(prof: Professional | None, site_id: int) -> bool:
    return prof is not None and prof.site_id == site_id and bool(prof.active) and bool(prof.phone)


def add_shift(site: Site, *, professional_id: int | None, starts_at: datetime | None,
              ends_at: datetime | None) -> OnCallShift:
    errors: dict[str, str] = {}
    prof = db.session.get(Professional, professional_id, with_for_update=True) if professional_id else None
    if not _pageable(prof, site.id):
        errors["professional_id"] = _("Choose an active professional of this site with a phone number.")
    if starts_at is None:
        errors["starts_at"] = _("Give the start of the shift.")
    if ends_at is None:
        errors["ends_at"] = _("Give the end of the shift.")
    if starts_at is not None and ends_at is not None:
        if ends_at <= starts_at:
            errors["ends_at"] = _("The end must be after the start.")
        elif ends_at - starts_at > MAX_SHIFT:
            errors["ends_at"] = _("A shift lasts at most 14 days.")
        elif ends_at <= utcnow():
            errors["ends_at"] = _("This shift would already be over.")
    if "professional_id" not in errors and prof is not None:
        on_call_step = next((s for s in chains_for([site.id])[site.id] if s.kind == StepKind.ON_CALL), None)
        if on_call_step is not None and (problem := refusal(on_call_step.channel, prof.phone)) is not None:
            errors["professional_id"] = _("The on-call step of the escalation chain pages by text message.") \
                + " " + problem
    if not errors and prof is not None:
        clash = db.session.scalar(select(OnCallShift).where(
            OnCallShift.professional_id == prof.id, OnCallShift.starts_at < ends_at,
            OnCallShift.ends_at > starts_at).limit(1))
        if clash is not None:
            errors["starts_at"] = _("This professional is already on call during part of this time.")
    if errors:
        raise ValidationFailed(errors)
    shift = OnCallShift(site_id=site.id, professional_id=prof.id, starts_at=starts_at, ends_at=ends_at)
    db.session.add(shift)
    db.session.flush()
    audit.record("oncall_shift_create", obj=shift, detail={"site_id": site.id, "professional_id": prof.id})
    return shift


def remove_shift(shift: OnCallShift) -> None:
    audit.record("oncall_shift_delete", obj=shift,
                 detail={"site_id": shift.site_id, "professional_id": shift.professional_id})
    db.session.delete(shift)
    db.session.flush()


def shifts_between(site_id: int, start: datetime, end: datetime) -> list[OnCallShift]:
    return list(db.session.scalars(
        select(OnCallShift).where(OnCallShift.site_id == site_id, OnCallShift.ends_at > start,
                                  OnCallShift.starts_at < end)
        .order_by(OnCallShift.starts_at, OnCallShift.id)))


def _covering(site_ids, start: datetime, end: datetime):
    """(site id, start, end) of the shifts of pageable people overlapping [start, end)."""
    return db.session.execute(
        select(OnCallShift.site_id, OnCallShift.starts_at, OnCallShift.ends_at)
        .join(Professional, Professional.id == OnCallShift.professional_id)
        .where(OnCallShift.site_id.in_(list(site_ids)), OnCallShift.ends_at > start,
               OnCallShift.starts_at < end, Professional.active.is_(True),
               Professional.phone.is_not(None), Professional.phone != "")
        .order_by(OnCallShift.site_id, OnCallShift.starts_at)).all()


def _gaps(intervals, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Parts of [start, end) covered by none of the sorted intervals (touching ones leave no gap)."""
    gaps, cursor = [], start
    for s, e in intervals:
        if s > cursor:
            gaps.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(s, e) for s, e in gaps if e > s]


def rota_gaps(site_id: int, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The periods of [start, end) when nobody who can be paged is on call at the site."""
    return _gaps([(s, e) for _sid, s, e in _covering([site_id], start, end)], start, end)


@dataclass(frozen=True)
class GapWarning:
    site_id: int
    site_code: str
    starts_at: datetime
    ends_at: datetime


def upcoming_gap_warnings(site_ids, horizon_hours: int = 72, *, now: datetime | None = None) -> list[GapWarning]:
    """Rota gaps from now to ``horizon_hours`` ahead, for several sites in two queries."""
    now = now or utcnow()
    end = now + timedelta(hours=horizon_hours)
    site_ids = list(site_ids)
    if not site_ids:
        return []
    by_site: dict[int, list] = {sid: [] for sid in site_ids}
    for sid, s, e in _covering(site_ids, now, end):
        by_site[sid].append((s, e))
    codes = dict(db.session.execute(select(Site.id, Site.code).where(Site.id.in_(site_ids))).all())
    return [GapWarning(sid, codes.get(sid, ""), s, e)
            for sid in site_ids for s, e in _gaps(by_site[sid], now, end)]


def on_call_now(site_ids, at: datetime | None = None) -> dict[int, Professional]:
    """Who is on call now at each site (the earliest-started shift when two overlap at a handover)."""
    at = at or utcnow()
    rows = db.session.execute(
        select(OnCallShift.site_id, Professional)
        .join(Professional, Professional.id == OnCallShift.professional_id)
        .where(OnCallShift.site_id.in_(list(site_ids)), OnCallShift.starts_at <= at, OnCallShift.ends_at > at,
               Professional.active.is_(True), Professional.phone.is_not(None), Professional.phone != "")
        .order_by(OnCallShift.site_id, OnCallShift.starts_at.desc(), OnCallShift.id.desc())).all()
    return {sid: prof for sid, prof in rows}  # later rows win: earliest start, lowest id


# --- escalation chain ------------------------------------------------------------------------

def steps_of(site_id: int) -> list[EscalationStep]:
    return list(db.session.scalars(select(EscalationStep).where(EscalationStep.site_id == site_id)
                                   .order_by(EscalationStep.position)))


def chains_for(site_ids) -> dict[int, tuple[ChainStep, ...]]:
    """The chain of each site, in one query (the default chain where none is configured)."""
    chains: dict[int, list[ChainStep]] = {sid: [] for sid in site_ids}
    for step in db.session.execute(
            select(EscalationStep.site_id, EscalationStep.kind, EscalationStep.professional_id,
                   EscalationStep.channel)
            .where(EscalationStep.site_id.in_(list(chains)))
            .order_by(EscalationStep.site_id, EscalationStep.position)):
        chains[step.site_id].append(ChainStep(step.kind, step.professional_id, step.channel))
    return {sid: tuple(steps) or DEFAULT_CHAIN for sid, steps in chains.items()}


def add_step(site: Site, *, kind: str, professional_id: int | None = None,
             channel: str = PageChannel.SMS) -> EscalationStep:
    if channel not in (PageChannel.SMS, PageChannel.VOICE, PageChannel.BOTH):
        raise ValidationFailed({"channel": _("Choose how this step is paged.")})
    steps = steps_of(site.id)
    if not steps:  # make the default chain explicit, so adding a step appends to what was shown
        steps = [_insert_step(site.id, 0, StepKind.ON_CALL, None)]
    if kind == StepKind.ON_CALL:
        if any(s.kind == StepKind.ON_CALL for s in steps):
            raise ValidationFailed({"kind": _("The on-call person is already in the chain.")})
        professional_id = None
    elif kind == StepKind.PROFESSIONAL:
        prof = db.session.get(Professional, professional_id) if professional_id else None
        if not _pageable(prof, site.id):
            raise ValidationFailed({"professional_id": _(
                "Choose an active professional of this site with a phone number.")})
        if any(s.professional_id == prof.id for s in steps):
            raise ValidationFailed({"professional_id": _("This professional is already in the chain.")})
        if (problem := refusal(channel, prof.phone)) is not None:
            raise ValidationFailed({"channel": problem})
    else:
        raise ValidationFailed({"kind": _("Unknown kind of step.")})
    if len(steps) >= MAX_STEPS:
        raise ValidationFailed({"kind": _("A chain has at most %(n)s steps.", n=MAX_STEPS)})
    step = _insert_step(site.id, steps[-1].position + 1, kind, professional_id, channel)
    audit.record("escalation_step_add", obj=step, detail={"site_id": site.id, "kind": str(kind),
                                                           "professional_id": professional_id,
                                                           "channel": str(channel)})
    return step


def set_step_channel(step: EscalationStep, channel: str) -> None:
    """Page this step by text, call or both; refused when its number (a named professional's, or
    for the on-call step the phone of anyone on the rota from now on) cannot receive it."""
    if channel not in (PageChannel.SMS, PageChannel.VOICE, PageChannel.BOTH):
        raise ValidationFailed({"channel": _("Choose how this step is paged.")})
    if step.kind == StepKind.PROFESSIONAL:
        phones = [step.professional.phone]
    else:
        now = utcnow()
        phones = [shift.professional.phone for shift in shifts_between(step.site_id, now, now + MAX_ROTA_AHEAD)]
    for phone in phones:
        if (problem := refusal(channel, phone)) is not None:
            raise ValidationFailed({"channel": problem})
    step.channel = channel
    db.session.flush()
    audit.record("escalation_step_channel", obj=step, detail={"site_id": step.site_id, "channel": str(channel)})


def _insert_step(site_id: int, position: int, kind: str, professional_id: int | None,
                 channel: str = PageChannel.SMS) -> EscalationStep:
    step = EscalationStep(site_id=site_id, position=position, kind=kind, professional_id=professional_id,
                          channel=channel)
    db.session.add(step)
    db.session.flush()
    return step


def remove_step(step: EscalationStep) -> None:
    audit.record("escalation_step_remove", obj=step, detail={"site_id": step.site_id, "kind": step.kind})
    db.session.delete(step)
    db.session.flush()


def move_step(step: EscalationStep, direction: str) -> None:
    """Swap the step with its neighbour above (``up``) or below (``down``)."""
    steps = steps_of(step.site_id)
    index = next(i for i, s in enumerate(steps) if s.id == step.id)
    other_index = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other_index < len(steps):
        raise ValidationFailed({"position": _("This step cannot move that way.")})
    other = steps[other_index]
    mine, theirs = step.position, other.position
    # Through a free position, so the unique (site, position) holds at every statement.
    free = db.session.scalar(select(func.min(EscalationStep.position)).where(
        EscalationStep.site_id == step.site_id)) - 1
    step.position = free
    db.session.flush()
    other.position = mine
    db.session.flush()
    step.position = theirs
    db.session.flush()
    audit.record("escalation_step_move", obj=step, detail={"site_id": step.site_id, "direction": direction})

