"""What other domains show on the triage queue, registered by them (``create_app`` wires it):
triage never imports the domains that feed it (the check-ins register their non-responders)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

_providers: dict[str, Callable[..., Any]] = {}


def register(name: str, provider: Callable[..., Any]) -> None:
    _providers[name] = provider


def provide(name: str, *args: Any, **kwargs: Any) -> Any:
    """What the provider registered under ``name`` gives, or None when nobody registered one."""
    provider = _providers.get(name)
    return provider(*args, **kwargs) if provider is not None else None
