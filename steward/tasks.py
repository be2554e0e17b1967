"""Queueing background work: after the caller's transaction commits, and never failing the caller's write.

Every service that hands work to Celery goes through :func:`enqueue_on_commit` (or :func:`enqueue_each_on_commit`
for batches), so the behaviour is one and the same everywhere:

- the task is sent only once the current transaction commits (immediately when there is none), so a worker reads
  committed rows and a rolled-back write queues nothing;
- if the broker cannot take the message (down, unreachable, misconfigured), the error is logged: the task's name,
  the error's class and its message with any credentials in a URL masked, and what will catch up; never the task's
  arguments, which may carry e-mail bodies or grant details. The user's write has committed and stands;
- the work stays recoverable: each caller names (``recovery``) the periodic sweep or command that redoes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction

__all__ = ["enqueue_each_on_commit", "enqueue_now", "enqueue_on_commit"]

logger = logging.getLogger(__name__)

_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def _masked(text: str) -> str:
    """``redis://user:secret@host`` -> ``redis://***@host`` (broker errors may quote the broker URL)."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", text)


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or getattr(task, "__name__", repr(task)))


def enqueue_now(task: Any, *args: Any, recovery: str = "", **kwargs: Any) -> bool:
    """Send ``task.delay(*args, **kwargs)`` now; on any error log it (without secrets) and return ``False``."""
    try:
        task.delay(*args, **kwargs)
    except Exception as exc:  # the caller's write has committed: losing the message must not undo or fail it
        logger.error(
            "Could not queue %s (%s: %s); %s",
            _task_name(task),
            type(exc).__name__,
            _masked(str(exc)),
            recovery or "the periodic sweep will pick the work up",
        )
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any, recovery: str = "", **kwargs: Any) -> None:
    """Queue ``task.delay(*args, **kwargs)`` once the current transaction commits, surviving a broker error.

    ``recovery`` says, in the log line written when the broker refuses, which sweep or command redoes the work.
    """
    transaction.on_commit(lambda: enqueue_now(task, *args, recovery=recovery, **kwargs))


def enqueue_each_on_commit(task: Any, calls: Iterable[Sequence[Any]], *, recovery: str = "") -> None:
    """Queue ``task.delay(*call)`` for each call after commit, in order; stop at the first broker error (the
    broker is down: one log line, not one per batch, and no wait on each of the remaining batches)."""
    batch = [tuple(call) for call in calls]
    if not batch:
        return

    def enqueue() -> None:
        for call in batch:
            if not enqueue_now(task, *call, recovery=recovery):
                return

    transaction.on_commit(enqueue)
