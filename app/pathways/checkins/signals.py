"""Signals for other domains (triage grading, adherence): sent inside the transaction, before commit."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sender: the ``Answer`` just recorded (parsed or not). Keyword: ``checkin``.
answer_recorded = _signals.signal("checkin-answer-recorded")
#: Sender: the ``CheckIn`` that reached completed, partial or no_response.
checkin_closed = _signals.signal("checkin-closed")
