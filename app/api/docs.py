"""Operation metadata attached to each API view, read by the OpenAPI builder and the auth hook."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from marshmallow import Schema

F = TypeVar("F", bound=Callable)

# Route converter for row ids: keeps ids within an integer column (no 500 on 99999999999999999999).
ID = "int(min=1, max=2147483647)"


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    response: type[Schema] | None = None
    status: int = 200
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    public: bool = False
    extra_errors: tuple[int, ...] = ()


def operation(**kwargs) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document; put it under the ``@bp.<method>`` decorator."""
    op = Operation(**kwargs)

    def decorate(view: F) -> F:
        view.api_operation = op  # type: ignore[attr-defined]
        return view

    return decorate


def operation_of(view: Callable | None) -> Operation | None:
    return getattr(view, "api_operation", None)
