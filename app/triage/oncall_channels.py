"""Which phone can receive which page: a text needs a mobile, a call reaches any number.

The kind of a number comes from ``phonenumbers`` (its metadata per country: in France 06/07
are mobiles, 01-05 fixed lines, 09 VoIP boxes, 08 special rates). A number whose kind cannot
be told apart (``FIXED_LINE_OR_MOBILE``, e.g. in North America) or is not known is given the
benefit of the doubt: a failed page then moves the alert on (``escalation.fail_page``).
"""
from __future__ import annotations

from enum import StrEnum

import phonenumbers
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l


class PageChannel(StrEnum):
    """How a step of the chain is paged."""

    SMS = "sms"
    VOICE = "voice"
    BOTH = "both"  # a text and a call
    AUTO = "auto"  # the fallback only: a call when its number is not a mobile, else a text


_TEXTABLE = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.PAGER,
    phonenumbers.PhoneNumberType.UNKNOWN,
}

CHANNEL_LABELS = {
    PageChannel.SMS: _l("Text message"),
    PageChannel.VOICE: _l("Voice call"),
    PageChannel.BOTH: _l("Text message and voice call"),
    PageChannel.AUTO: _l("Automatic: a voice call for a landline, a text for a mobile"),
}


def can_receive_sms(phone: str | None) -> bool:
    """False only for a number known not to be a mobile (a landline, a VoIP box, a special rate)."""
    if not phone:
        return False
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return False
    return kind in _TEXTABLE


def resolve(channel: str, phone: str | None) -> str:
    """The channel a page to ``phone`` really uses: ``auto`` becomes a call for a number that
    cannot receive texts and a text otherwise; a text to such a number becomes a call (a number
    changed after the step was saved must still be reached), "both" keeps the call only."""
    textable = can_receive_sms(phone)
    if channel == PageChannel.AUTO:
        return PageChannel.SMS if textable else PageChannel.VOICE
    if channel in (PageChannel.SMS, PageChannel.BOTH) and not textable:
        return PageChannel.VOICE
    return channel


def refusal(channel: str, phone: str | None) -> str | None:
    """Why ``phone`` cannot be paged by ``channel`` (for a form), or None when it can."""
    if channel in (PageChannel.SMS, PageChannel.BOTH) and not can_receive_sms(phone):
        return _("This number is not a mobile (a landline or a switchboard): it cannot receive text "
                 "messages. Page it by voice call, or give a mobile number.")
    return None
