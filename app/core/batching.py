"""Opt-in help for a job that handles many small units of work in one transaction.

Inside ``batch_scope()`` (one per transaction, opened by the job that owns the commit):

* ``cached(key, load)`` loads reference data (questionnaire items, current grading rules) once
  instead of once per unit. Outside a scope it just calls ``load()``, so every other caller
  reads fresh data as before.
* ``defer(kind, item, run)`` collects follow-up work per kind (e.g. the patients whose adherence
  must be recomputed) so the owner runs it once, set-based, with ``scope.run_deferred()`` before
  its commit: same transaction, same result, fewer statements. Outside a scope it returns False
  and the caller does the work at once.

The owner must call ``run_deferred()`` before committing; the scope refuses to be left with work
pending (a bug, not something to lose silently).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class BatchScope:
    def __init__(self) -> None:
        self._cache: dict[Hashable, Any] = {}
        self._pending: dict[str, tuple[Callable[[list], None], list]] = {}

    def cached(self, key: Hashable, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def defer(self, kind: str, item: Hashable, run: Callable[[list], None]) -> None:
        _, items = self._pending.setdefault(kind, (run, []))
        if item not in items:
            items.append(item)

    def run_deferred(self) -> None:
        while self._pending:
            kind = next(iter(self._pending))
            run, items = self._pending.pop(kind)
            run(items)

    @property
    def pending(self) -> bool:
        return bool(self._pending)


_scope: ContextVar[BatchScope | None] = ContextVar("oncolink_batch_scope", default=None)


@contextmanager
def batch_scope() -> Iterator[BatchScope]:
    scope = BatchScope()
    token = _scope.set(scope)
    try:
        yield scope
    except BaseException:
        scope._pending.clear()  # the transaction is rolled back with whatever was deferred
        raise
    finally:
        _scope.reset(token)
    if scope.pending:
        raise RuntimeError("batch scope left with deferred work: call run_deferred() before committing")


def cached(key: Hashable, load: Callable[[], Any]) -> Any:
    scope = _scope.get()
    return load() if scope is None else scope.cached(key, load)


def defer(kind: str, item: Hashable, run: Callable[[list], None]) -> bool:
    scope = _scope.get()
    if scope is None:
        return False
    scope.defer(kind, item, run)
    return True


def in_scope() -> bool:
    return _scope.get() is not None
