"""Recompute a patient's adherence when a check-in answer about missed doses comes in."""
from __future__ import annotations

import logging

from app.pathways.checkins.signals import answer_recorded

from .queries import DOSES_MISSED

log = logging.getLogger("oncolink.adherence")


def on_answer_recorded(answer, checkin=None, **_kw) -> None:
    """Runs inside the check-in's transaction. A failure here must not lose the patient's answer:
    it is rolled back to a savepoint and logged (without health data); the nightly job catches up."""
    if answer.item_code != DOSES_MISSED or not answer.parsed or checkin is None:
        return
    from app.extensions import db

    from .services import recompute_patient

    try:
        with db.session.begin_nested():
            recompute_patient(checkin.patient_id)
    except Exception:  # the answer matters more than the recompute
        log.exception("adherence recompute after an answer failed (checkin %s)", checkin.id)


def connect() -> None:
    answer_recorded.connect(on_answer_recorded)
