"""Signals other domains subscribe to; the transport never imports its listeners."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent with the ``Message`` as sender after a status callback moved its status forward
#: (inside the request's transaction, before its commit).
message_status_changed = _signals.signal("message-status-changed")
