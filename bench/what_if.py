"""Bench-only experiments: a candidate product change, applied inside the benchmark process
(or on the bench database) so it can be measured before it is proposed.

Nothing here edits the product code or touches any database but the bench one. Select
them with ``--what-if NAME`` (repeatable); results then go to a separate file.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask


@dataclass(frozen=True)
class Experiment:
    summary: str
    apply: Callable[[Flask], None]


def _no_expire_on_commit(app: Flask) -> None:
    # The views commit the audit row before rendering; by default that commit expires
    # every loaded object, and the template then reloads them one by one.
    from app.extensions import db

    with app.app_context():
        db.session.configure(expire_on_commit=False)


def _site_staff_candidates(app: Flask) -> None:
    # The lower bound of a search-as-you-type picker: the patient page offers only the
    # site's own staff instead of every community professional of the directory.
    from sqlalchemy import select

    from app.care import services
    from app.care.models import Professional
    from app.extensions import db

    def candidates(patient):
        return list(db.session.scalars(
            select(Professional).where(Professional.active.is_(True), Professional.site_id == patient.site_id)
            .order_by(Professional.last_name, Professional.first_name)))

    services.care_team_candidates = candidates


def _preload_organisations(app: Flask) -> None:
    # The care-team table shows each member's organisation, lazy-loaded one by one.
    # Loading them in one statement has the effect of
    # selectinload(CareTeamMember.professional).selectinload(Professional.organisation).
    from flask import g
    from sqlalchemy import select

    from app.care.models import Organisation
    from app.extensions import db
    from app.web import access

    original = access.patient_record

    def patient_record(patient_id: int):
        record = original(patient_id)
        if record is not None:
            ids = {m.professional.organisation_id for m in record.care_team} - {None}
            # Held for the request: the identity map only keeps weak references.
            g.bench_organisations = db.session.scalars(
                select(Organisation).where(Organisation.id.in_(ids))).all()
        return record

    access.patient_record = patient_record


EXPERIMENTS: dict[str, Experiment] = {
    "no-expire-on-commit": Experiment(
        "session created with expire_on_commit=False (no reload of every object after the audit commit)",
        _no_expire_on_commit),
    "site-staff-candidates": Experiment(
        "care-team picker lists only the site's staff (community professionals found by search instead)",
        _site_staff_candidates),
    "preload-organisations": Experiment(
        "care-team members' organisations loaded in one statement instead of one per organisation "
        "(only visible together with no-expire-on-commit)",
        _preload_organisations),
}


_applied: set[str] = set()


def apply_all(app: Flask, names: list[str]) -> None:
    """Apply each experiment once per process: they patch module-level objects shared by every app."""
    for name in names:
        if name not in _applied:
            EXPERIMENTS[name].apply(app)
            _applied.add(name)
