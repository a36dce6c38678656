"""Tariff versions: lookup by code, date and month of follow-up; adding a version."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select

from app.core import audit
from app.core.errors import ValidationFailed
from app.extensions import db

from .models import Tariff

RECIPIENTS = ("site", "gp", "community_pharmacist", "community_nurse")


@dataclass(frozen=True)
class Rate:
    tariff_id: int
    amount_cents: int
    recipient: str


class TariffBook:
    """Every tariff version, loaded once (a handful of rows) and looked up in memory."""

    def __init__(self, tariffs: list[Tariff]):
        self._by_code: dict[str, list[Tariff]] = defaultdict(list)
        for t in tariffs:
            self._by_code[t.code].append(t)

    @classmethod
    def load(cls) -> TariffBook:
        return cls(list(db.session.scalars(select(Tariff))))

    def rate(self, code: str, on: date, month: int = 1) -> Rate | None:
        """The amount valid on ``on`` for the highest step at or below ``month``; among versions of
        the same step, the one that started last wins."""
        best: Tariff | None = None
        for t in self._by_code.get(code, ()):
            if t.valid_from > on or (t.valid_to is not None and t.valid_to < on) or t.from_month > month:
                continue
            if best is None or (t.from_month, t.valid_from) > (best.from_month, best.valid_from):
                best = t
        return Rate(best.id, best.amount_cents, best.recipient) if best else None


def list_tariffs() -> list[Tariff]:
    return list(db.session.scalars(select(Tariff).order_by(Tariff.code, Tariff.from_month, Tariff.valid_from)))


def add_tariff(*, code: str, recipient: str, amount_cents: int, from_month: int, valid_from: date,
               valid_to: date | None, note: str, actor_id: int | None) -> Tariff:
    """A new version of a tariff. The previous open-ended version of the same step is closed the day
    before, so two versions never overlap."""
    errors: dict[str, str] = {}
    code = (code or "").strip()
    if not code or len(code) > 40:
        errors["code"] = _("Give a code of at most 40 characters.")
    if recipient not in RECIPIENTS:
        errors["recipient"] = _("Choose who is paid.")
    if amount_cents < 0:
        errors["amount"] = _("The amount cannot be negative.")
    if from_month < 1:
        errors["from_month"] = _("The month of follow-up starts at 1.")
    if valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = _("The end date is before the start date.")
    if not errors and db.session.scalar(select(Tariff.id).where(
            Tariff.code == code, Tariff.from_month == from_month, Tariff.valid_from == valid_from)):
        errors["valid_from"] = _("A version of this tariff already starts on that date.")
    if errors:
        raise ValidationFailed(errors)
    for previous in db.session.scalars(select(Tariff).where(
            Tariff.code == code, Tariff.from_month == from_month, Tariff.valid_from < valid_from,
            Tariff.valid_to.is_(None))):
        previous.valid_to = date.fromordinal(valid_from.toordinal() - 1)
    tariff = Tariff(code=code, recipient=recipient, amount_cents=amount_cents, from_month=from_month,
                    valid_from=valid_from, valid_to=valid_to, note=(note or "").strip(), is_default=False,
                    created_by_id=actor_id)
    db.session.add(tariff)
    db.session.flush()
    audit.record("tariff_create", obj=tariff, detail={"code": code, "amount_cents": amount_cents})
    return tariff
