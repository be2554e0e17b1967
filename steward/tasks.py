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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import transaction

__all__ = [
    "coalesced_begin",
    "coalesced_take",
    "enqueue_coalesced_on_commit",
    "enqueue_each_on_commit",
    "enqueue_now",
    "enqueue_on_commit",
]

logger = logging.getLogger(__name__)

_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def _masked(text: str) -> str:
    """``redis://user:secret@host`` -> ``redis://***@host`` (broker errors may quote the broker URL)."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", text)


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or getattr(task, "__name__", repr(task)))


def enqueue_now(task: Any, *args: Any, recovery: str = "", delay_s: float = 0, **kwargs: Any) -> bool:
    """Send ``task.delay(*args, **kwargs)`` now (to run ``delay_s`` seconds from now when given); on any error log
    it (without secrets) and return ``False``."""
    try:
        if delay_s > 0:
            task.apply_async(args, kwargs, countdown=delay_s)
        else:
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


# --- Coalesced work -------------------------------------------------------------------------------------------
# Work that a worker does for a *set* of things (re-index these datasets, drain the pending propagation changes)
# is cheaper done once for many callers than once per caller: indexing 5 datasets costs about as much as indexing
# 50, and a drain costs about the same for 1 change as for 20. With a Redis broker, callers add their members to
# a Redis set and publish the task only when none is queued yet (a flag set with NX); the task clears the flag
# before it takes the members, so a member added after that publishes again: nothing is left behind. Other
# brokers (the embedded filesystem broker) and eager mode publish per call, as before.

_COALESCE_PREFIX = "steward:coalesce:"
_COALESCE_TTL_S = 60  # a queued task lost with its flag delays the next publish by at most this long
_redis_clients: dict[tuple[int, str], Any] = {}


def _key(name: str) -> str:
    """The Redis key of ``name``'s pending set, per queue: deployments sharing a broker database each have a
    queue of their own (``STEWARD_CELERY_QUEUE``), and must not take each other's members."""
    from celery import current_app

    return f"{_COALESCE_PREFIX}{current_app.conf.task_default_queue}:{name}"


def _broker_redis() -> Any | None:
    """A Redis client on the Celery broker (one per process), or ``None`` when the broker is not Redis or tasks
    run eagerly."""
    import os

    from celery import current_app

    conf = current_app.conf
    url = str(conf.broker_url or "")
    if conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    key = (os.getpid(), url)
    client = _redis_clients.get(key)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        _redis_clients.clear()  # a forked child drops its parent's connections
        _redis_clients[key] = client
    return client


def enqueue_coalesced_on_commit(
    task: Any,
    name: str,
    members: Iterable[str] = (),
    *,
    args: Sequence[Any] = (),
    per_call: Callable[[], None] | None = None,
    recovery: str = "",
    delay_s: float = 0,
) -> None:
    """After commit, add ``members`` to the pending set ``name`` and queue ``task(*args)`` unless one is queued
    already (``args`` must then be the same for every caller of ``name``). ``delay_s``: the task runs that many
    seconds later, so that what is committed meanwhile joins it (the flag stays set until it starts).

    ``task`` must call :func:`coalesced_take` (``name``) first thing. Without a Redis broker, ``per_call()`` (the
    caller's former per-call queueing, sent after commit) runs instead, or ``task.delay()`` when it is ``None``.
    """
    items = [str(m) for m in members]

    def enqueue() -> None:
        client = _broker_redis()
        if client is None:
            if per_call is not None:
                per_call()
            else:
                enqueue_now(task, *args, recovery=recovery, delay_s=delay_s)
            return
        key = _key(name)
        flag = f"{key}:queued"
        try:
            pipe = client.pipeline(transaction=False)
            if items:
                pipe.sadd(key, *items)
            pipe.set(flag, "1", nx=True, ex=_COALESCE_TTL_S)
            first = bool(pipe.execute()[-1])
        except Exception as exc:  # as enqueue_now: the caller's write has committed and stands
            logger.error(
                "Could not queue %s (%s: %s); %s",
                _task_name(task),
                type(exc).__name__,
                _masked(str(exc)),
                recovery or "the periodic sweep will pick the work up",
            )
            return
        if first and not enqueue_now(task, *args, recovery=recovery, delay_s=delay_s):
            try:
                client.delete(flag)  # let the next caller try again
            except Exception:  # the broker is down; the flag expires by itself
                pass

    transaction.on_commit(enqueue)


def coalesced_begin(name: str) -> None:
    """In a coalesced task without members (e.g. a drain of rows the database holds): clear the queued flag
    before reading what is pending, so that work committed from now on queues another run."""
    client = _broker_redis()
    if client is not None:
        client.delete(f"{_key(name)}:queued")


def coalesced_take(name: str, count: int, handle: Callable[[list[str]], Any], *, claim: str) -> int:
    """In a coalesced task: clear the queued flag, then ``handle`` the pending members of ``name``, ``count`` at
    a time, until none is left (members added meanwhile are taken too, or queue another task); returns how many.

    At least once, even if the worker dies: the pending set is taken whole by renaming it to a key of this
    task's own (``claim``: the task id, which a retry and a redelivery after a lost worker keep), and a member
    leaves that key only after ``handle`` returned for it. A retry or redelivery therefore finds what it had
    taken and not finished, and handles it first."""
    import redis

    client = _broker_redis()
    if client is None:
        return 0
    key = _key(name)
    work = f"{key}:taking:{claim}"
    client.delete(f"{key}:queued")
    taken = 0
    while True:
        if not client.exists(work):
            try:
                client.rename(key, work)
            except redis.ResponseError:  # no such key: nothing pending
                return taken
        while batch := [m.decode() if isinstance(m, bytes) else str(m) for m in client.srandmember(work, count)]:
            handle(batch)
            client.srem(work, *batch)
            taken += len(batch)
