"""Who answers an inbound text: a professional acknowledging a page first, else the patient's
check-in conversation. Wired in ``create_app``; the transport only knows one handler."""
from __future__ import annotations


def route_inbound_sms(from_number: str, to_number: str, body: str, message_id) -> list[str]:
    from app.pathways.checkins.conversation import handle_inbound_sms
    from app.triage.paging import handle_professional_sms

    replies = handle_professional_sms(from_number, body)
    if replies is not None:
        return replies
    return handle_inbound_sms(from_number, to_number, body, message_id)
