"""Signals other domains subscribe to; the transport never imports its listeners."""
from __future__ import annotations

from dataclasses import dataclass

from blinker import Namespace

_signals = Namespace()

#: Sent with the ``Message`` as sender after a status callback moved its status forward
#: (inside the request's transaction, before its commit).
message_status_changed = _signals.signal("message-status-changed")

#: Sent with the phone number as sender when the provider reports that it no longer accepts our
#: texts (Twilio 21610: the recipient replied STOP to the sender), with ``patient_ids``: the
#: patients just marked opted out (inside the dispatcher's transaction, before its commit).
recipient_opted_out = _signals.signal("recipient-opted-out")

@dataclass(frozen=True)
class FailedSend:
    """An outbox row the provider refused for good (``failed``) or the dispatcher gave up on
    (``dead``): no message content, only what a listener needs to find its own row."""

    id: int
    channel: str
    ref: str | None
    state: str
    error_code: int | None
    urgent: bool


#: Sent with a ``FailedSend`` as sender by the dispatcher, inside the transaction that marks the
#: row failed or dead, before its commit (in a savepoint: a listener that raises is logged and
#: its changes undone, the failure is still recorded).
outbox_failed = _signals.signal("outbox-failed")
