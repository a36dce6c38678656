"""Plain validators shared by forms, API schemas and services."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from flask_babel import gettext as _


def normalise_phone(raw: str, region: str = "FR", *, mobile_required: bool = False) -> str:
    """Return the E.164 form of ``raw`` or raise ValueError with a readable message."""
    try:
        number = phonenumbers.parse((raw or "").strip(), region)
    except phonenumbers.NumberParseException:
        raise ValueError(_("Not a phone number.")) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("This phone number is not valid."))
    if mobile_required and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValueError(_("Text messages need a mobile number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(_("Unknown time zone.")) from None
    if name not in available_timezones():
        raise ValueError(_("Unknown time zone."))
    return name


def check_ins(value: str) -> str:
    """French INS (NIR): 13 characters + 2-digit key = 97 - (number mod 97)."""
    text = (value or "").replace(" ", "").upper()
    if len(text) != 15:
        raise ValueError(_("The INS has 15 characters."))
    body, key = text[:13], text[13:]
    # Corsican departments 2A/2B count as 19/18 for the key.
    numeric = body.replace("2A", "19", 1) if body[5:7] == "2A" else body
    numeric = numeric.replace("2B", "18", 1) if body[5:7] == "2B" else numeric
    if not (numeric.isdigit() and key.isdigit()):
        raise ValueError(_("The INS contains only digits (2A/2B for Corsica)."))
    if 97 - (int(numeric) % 97) != int(key):
        raise ValueError(_("The INS key does not match."))
    return text
