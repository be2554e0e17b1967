"""Crawls: queue a run (API, schedule), execute it (Celery task or ``manage.py crawl``), find the sources due."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from connectors.sources.base import Progress, SourceError
from ledger import audit
from sources import crypto, tasks
from sources.actions import SOURCE_CRAWL
from sources.models import RunState, Source, SourceRun
from sources.readers import reader_for
from sources.services.apply import snapshot_apply
from sources.services.sources import crawler_user, next_run, sources_check
from steward.identity import Actor, user_or_none
from steward.tasks import enqueue_on_commit

__all__ = ["run_execute", "run_queue", "sources_due"]

logger = logging.getLogger(__name__)

MAX_ERROR = 4000


@transaction.atomic
def run_queue(*, actor: Actor | None, source: Source, trigger: str = "api") -> SourceRun:
    """Queue a crawl of ``source`` (one waiting run at most: a second request returns the waiting one); the
    Celery task ``sources.crawl`` runs it after commit."""
    if trigger == "api":
        sources_check(actor)  # type: ignore[arg-type]
    Source.objects.select_for_update().filter(pk=source.pk).first()
    waiting = SourceRun.objects.filter(source=source, state=RunState.QUEUED).first()
    if waiting is not None:
        return waiting
    run = SourceRun.objects.create(source=source, trigger=trigger, requested_by=user_or_none(actor))
    if trigger == "api":
        audit.record(actor=actor, action=SOURCE_CRAWL, target=source, after={"run": str(run.pk)})
    enqueue_on_commit(tasks.crawl_task, str(run.pk), recovery="sources.crawl_due queues it again within minutes")
    return run


def _scrub(text: str, secret: dict[str, Any]) -> str:
    """An error message without any of the source's secret values (drivers may echo a connection string)."""
    for value in secret.values():
        value = str(value)
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text[:MAX_ERROR]


def run_execute(*, run_id: UUID, progress: Progress | None = None) -> SourceRun:
    """Read the source and apply what it saw, recording the outcome on the run. A failure (the source cannot be
    read, or applying fails) changes nothing in the catalog and lineage and is recorded as the run's error.
    A run already finished is returned as it is (the task is delivered at least once)."""
    with transaction.atomic():
        run = SourceRun.objects.select_for_update().select_related("source").get(pk=run_id)
        if run.state in (RunState.SUCCEEDED, RunState.FAILED):
            return run
        run.state, run.started_at = RunState.RUNNING, timezone.now()
        run.save(update_fields=["state", "started_at"])
    source = run.source
    secret: dict[str, Any] = {}
    try:
        secret = crypto.decrypt(source.credentials_encrypted)
        snapshot = reader_for(source.kind).read(dict(source.config), secret, progress)
        result = snapshot_apply(actor=crawler_user(), source=source, snapshot=snapshot, progress=progress)
    except (SourceError, crypto.CredentialsUnreadable) as exc:
        return _finish(run, error=_scrub(str(exc), secret))
    except Exception as exc:
        logger.exception("crawl of source %s failed", source.name)
        return _finish(run, error=_scrub(f"Applying the crawl failed ({type(exc).__name__}: {exc}).", secret))
    run.created, run.updated, run.unchanged = result.created, result.updated, result.unchanged
    run.removed, run.edges, run.warnings = result.removed, result.events, result.warnings[:500]
    return _finish(run)


def _finish(run: SourceRun, *, error: str = "") -> SourceRun:
    run.state = RunState.FAILED if error else RunState.SUCCEEDED
    run.error = error
    run.finished_at = timezone.now()
    run.save()
    if error:
        logger.warning("crawl of source %s failed: %s", run.source.name, error)
    return run


STALE_QUEUED = timedelta(minutes=10)


def sources_due() -> list[SourceRun]:
    """Queue a crawl of every enabled source whose schedule is due (moving its next time on), and queue again
    runs still waiting after ``STALE_QUEUED`` (their message was lost: at-least-once)."""
    now = timezone.now()
    queued = []
    for run_id in SourceRun.objects.filter(state=RunState.QUEUED, queued_at__lt=now - STALE_QUEUED).values_list(
        "pk", flat=True
    ):
        enqueue_on_commit(tasks.crawl_task, str(run_id))
    for source in Source.objects.filter(enabled=True, next_run_at__lte=now).exclude(schedule=""):
        with transaction.atomic():
            locked = Source.objects.select_for_update(skip_locked=True).filter(pk=source.pk, next_run_at__lte=now)
            found = locked.first()
            if found is None:
                continue
            found.next_run_at = next_run(found.schedule, now)
            found.save(update_fields=["next_run_at"])
            if SourceRun.objects.filter(source=found, state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
                continue
            queued.append(run_queue(actor=None, source=found, trigger="schedule"))
    return queued
