"""Strict JSON fields for the API: exact JSON types, bounded sizes, translated messages.

Everything a field lets through must be storable as is on SQLite and PostgreSQL:
text without NUL or unpaired surrogates, integers within a 32-bit column, dates.
"""
from __future__ import annotations

import unicodedata
from typing import Any, ClassVar

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate

INT32_MAX = 2**31 - 1

_COMMON_MESSAGES = {
    "required": _l("This field is required."),
    "null": _l("This field cannot be null."),
    "validator_failed": _l("Invalid value."),
}


class _Translated:
    """Render (lazy) translated messages at the time the error is made."""

    error_messages: dict[str, Any]

    def make_error(self, key: str, **kwargs) -> ValidationError:
        return ValidationError(str(self.error_messages[key]))


class Text(_Translated, fields.String):
    """A JSON string of printable text, at most ``max_length`` characters."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        **_COMMON_MESSAGES,
        "invalid": _l("Not a valid string."),
        "invalid_utf8": _l("Not a valid string."),
        "control": _l("Control characters are not allowed."),
        "encoding": _l("The text contains invalid characters."),
    }

    def __init__(self, max_length: int | None, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        validators = list(kwargs.pop("validate", None) or [])
        if max_length is not None:
            validators.insert(0, validate.Length(max=max_length, error=_l("At most {max} characters.")))
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("encoding") from None
        allowed = "\n\t" if self.multiline else ""
        if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
            raise self.make_error("control")
        return value


class Int(_Translated, fields.Integer):
    """A JSON integer (not a float, string or boolean), within a database column."""

    default_error_messages: ClassVar[dict[str, Any]] = {**_COMMON_MESSAGES, "invalid": _l("Not a valid integer."),
                              "too_large": _l("Not a valid integer.")}

    def __init__(self, *, minimum: int = -INT32_MAX, maximum: int = INT32_MAX, **kwargs):
        validators = list(kwargs.pop("validate", None) or [])
        validators.insert(0, validate.Range(
            min=minimum, max=maximum, error=_l("Must be between {min} and {max}.")))
        super().__init__(strict=True, validate=validators, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class Id(Int):
    """The id of a row."""

    def __init__(self, **kwargs):
        super().__init__(minimum=1, **kwargs)


class Bool(_Translated, fields.Boolean):
    """``true`` or ``false``, nothing that merely looks like it."""

    default_error_messages: ClassVar[dict[str, Any]] = {**_COMMON_MESSAGES, "invalid": _l("Not a valid boolean.")}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Date(_Translated, fields.Date):
    """An ISO 8601 calendar date, ``YYYY-MM-DD``."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        **_COMMON_MESSAGES,
        "invalid": _l("Not a valid date: use YYYY-MM-DD."),
        "format": _l("Not a valid date: use YYYY-MM-DD."),
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Choice(Text):
    """One of a fixed set of codes."""

    def __init__(self, choices, **kwargs):
        codes = [str(c) for c in choices]
        super().__init__(None, validate=[validate.OneOf(codes, error=_l("Must be one of: {choices}."))],
                         **kwargs)


class StrictSchema(Schema):
    """Unknown fields are refused and named; messages are translated."""

    error_messages: ClassVar[dict[str, Any]] = {
        "unknown": _l("Unknown field."),
        "type": _l("Invalid input type."),
    }
