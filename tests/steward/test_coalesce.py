"""Coalesced background work on the real Redis broker: many writers, one queued task, nothing left behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from steward.celery import app
from steward.tasks import coalesced_begin, coalesced_take, enqueue_coalesced_on_commit

pytestmark = pytest.mark.django_db


class _Task:
    name = "tests.coalesced"

    def __init__(self) -> None:
        self.sent = 0

    def delay(self) -> None:
        self.sent += 1


@pytest.fixture
def on_redis(settings, redis_url) -> Iterator[None]:
    """Not eager, on the real Redis, on a queue of this test's own (its pending sets are per queue)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue = f"test-coalesce-{uuid.uuid4().hex}"
    saved = app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue = saved


def test_writers_while_a_task_is_queued_add_to_it_and_queue_nothing(on_redis, django_capture_on_commit_callbacks):
    task = _Task()
    for members in (["a", "b"], ["b", "c"], ["d"]):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_coalesced_on_commit(task, "things", members)
    assert task.sent == 1

    seen: list[str] = []
    assert coalesced_take("things", 2, seen.extend, claim="t1") == 4
    assert sorted(seen) == ["a", "b", "c", "d"]
    # Once the task has started, the next write queues another.
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_coalesced_on_commit(task, "things", ["e"])
    assert task.sent == 2
    assert coalesced_take("things", 10, seen.extend, claim="t2") == 1


def test_what_a_failed_or_killed_task_took_is_handled_by_its_retry(on_redis, django_capture_on_commit_callbacks):
    task = _Task()
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_coalesced_on_commit(task, "things", ["a", "b", "c"])

    def die(batch: list[str]) -> None:
        raise SystemExit("worker killed")  # as a lost worker: nothing of the task's own runs after this

    with pytest.raises(SystemExit):
        coalesced_take("things", 10, die, claim="t1")
    # Another task finds nothing pending: what t1 took is t1's ...
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_coalesced_on_commit(task, "things", ["d"])
    other: list[str] = []
    assert coalesced_take("things", 10, other.extend, claim="t2") == 1
    assert other == ["d"]
    # ... and t1's retry (or its redelivery, with the same task id) handles it.
    seen: list[str] = []
    assert coalesced_take("things", 10, seen.extend, claim="t1") == 3
    assert sorted(seen) == ["a", "b", "c"]
    assert coalesced_take("things", 10, seen.extend, claim="t1") == 0


def test_a_memberless_drain_is_queued_once_until_it_begins(on_redis, django_capture_on_commit_callbacks):
    task = _Task()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_coalesced_on_commit(task, "drain")
    assert task.sent == 1
    coalesced_begin("drain")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_coalesced_on_commit(task, "drain")
    assert task.sent == 2


def test_without_redis_each_call_is_sent_as_before(django_capture_on_commit_callbacks):
    task = _Task()
    calls: list[int] = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_coalesced_on_commit(task, "things", ["a"], per_call=lambda: calls.append(1))
    assert calls == [1, 1]
    assert task.sent == 0
