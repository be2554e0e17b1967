"""Run a write again when a concurrent writer got there first.

Two transactions that create the same new rows (a dataset both name, the open history row of an entity both
change) collide on a unique constraint, or wait for each other in opposite orders (a deadlock PostgreSQL breaks by
failing one). Both are races, not bad input: the loser's work is simply done again, in a fresh savepoint, where it
now sees the winner's committed rows. Only idempotent writes may be retried (ingestion, upserts).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import transaction

__all__ = ["ATTEMPTS", "retry_races"]

logger = logging.getLogger(__name__)

ATTEMPTS = 4
_RACES = {"23505", "40P01", "40001"}  # unique_violation, deadlock_detected, serialization_failure

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _is_race(exc: BaseException) -> bool:
    """Django wraps driver errors (the cause holds the SQLSTATE); a COPY on the raw cursor raises them as is."""
    return any(getattr(e, "sqlstate", None) in _RACES for e in (exc, exc.__cause__))


def retry_races(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``func`` in a transaction (a savepoint inside an outer one); when it loses a race to a concurrent
    writer (unique violation, deadlock, serialization failure), roll back and run it again, up to ``ATTEMPTS``."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    return func(*args, **kwargs)
            except Exception as exc:
                if attempt == ATTEMPTS or not _is_race(exc):
                    raise
                logger.info("%s lost a race (attempt %d), running it again: %s", func.__qualname__, attempt, exc)
        raise AssertionError("unreachable")

    return wrapper
