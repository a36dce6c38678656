"""Recompute a patient's adherence when a check-in answer about missed doses comes in."""
from __future__ import annotations

import logging

from app.core import batching
from app.pathways.checkins.signals import answer_recorded

from .queries import DOSES_MISSED

log = logging.getLogger("oncolink.adherence")


def on_answer_recorded(answer, checkin=None, **_kw) -> None:
    """Runs inside the check-in's transaction. A failure here must not lose the patient's answer:
    it is rolled back to a savepoint and logged (without health data); the nightly job catches up.

    Inside a batch job (``app.core.batching``, e.g. reading the inbound SMS queue) the patient is
    only noted, and the batch recomputes all its patients at once before its commit."""
    if answer.item_code != DOSES_MISSED or not answer.parsed or checkin is None:
        return
    if batching.defer("adherence", checkin.patient_id, recompute_after_answers):
        return
    recompute_after_answers([checkin.patient_id])


def recompute_after_answers(patient_ids: list[int]) -> None:
    from app.extensions import db

    from .services import recompute_patients

    try:
        with db.session.begin_nested():
            recompute_patients(patient_ids)
    except Exception:  # the answers matter more than the recompute
        log.exception("adherence recompute after answers failed (%d patients)", len(patient_ids))


def connect() -> None:
    answer_recorded.connect(on_answer_recorded)
