"""Signals other domains subscribe to; the transport never imports its listeners."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent with the ``Message`` as sender after a status callback moved its status forward
#: (inside the request's transaction, before its commit).
message_status_changed = _signals.signal("message-status-changed")

#: Sent with the phone number as sender when the provider reports that it no longer accepts our
#: texts (Twilio 21610: the recipient replied STOP to the sender), with ``patient_ids``: the
#: patients just marked opted out (inside the dispatcher's transaction, before its commit).
recipient_opted_out = _signals.signal("recipient-opted-out")
