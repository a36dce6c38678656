"""Domain errors that every layer understands; views turn them into pages or JSON."""
from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a service raises for a caller to show."""


class ValidationFailed(DomainError):
    """Invalid input; ``errors`` maps a field name to its messages."""

    def __init__(self, errors: dict[str, list[str] | str]):
        self.errors = {k: v if isinstance(v, list) else [v] for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items()))


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Conflict(DomainError):
    pass
