"""Sources: create, change, delete (data stewards and admins), each audited without its credentials."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import crontab
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from connectors.sources.base import SourceError, allowed_paths, path_problem
from ledger import audit
from sources import crypto
from sources.actions import SOURCE_CREATE, SOURCE_DELETE, SOURCE_UPDATE
from sources.models import Source
from steward.errors import Conflict, FieldProblem, PermissionDenied, ProblemCollector
from steward.identity import Actor, Role, has_role, user_or_none

__all__ = [
    "can_manage_sources",
    "crawler_user",
    "next_run",
    "source_create",
    "source_delete",
    "source_update",
    "sources_check",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MIN_INTERVAL = 60


def can_manage_sources(user: Any) -> bool:
    return has_role(user, Role.DATA_STEWARD, Role.ADMIN)


def sources_check(actor: Actor) -> None:
    if not can_manage_sources(actor):
        raise PermissionDenied("Only data stewards and admins see and manage sources.")


def crawler_user() -> User:
    """The account crawls write as (``STEWARD_SOURCE_CRAWLER_USER``): a lineage producer, no password."""
    user, created = get_user_model().objects.get_or_create(username=settings.STEWARD_SOURCE_CRAWLER_USER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        group, _ = Group.objects.get_or_create(name=Role.LINEAGE_PRODUCER)
        user.groups.add(group)
    return user


def _parse_schedule(value: str) -> crontab | int | None:
    """``""`` (only when asked), seconds (at least 60) or a five-field crontab line; raises ``ValueError``."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        seconds = int(value)
        if seconds < MIN_INTERVAL:
            raise ValueError(f"At least {MIN_INTERVAL} seconds between crawls.")
        return seconds
    parts = value.split()
    if len(parts) != 5:
        raise ValueError('Seconds ("3600") or a crontab line of five fields ("0 3 * * *").')
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise ValueError(f"Not a valid crontab line: {exc}.") from None


def next_run(schedule: str, after: datetime | None = None) -> datetime | None:
    """When a source with this schedule crawls next, after ``after`` (now); ``None`` for no schedule."""
    now = after or timezone.now()
    parsed = _parse_schedule(schedule)
    if parsed is None:
        return None
    if isinstance(parsed, int):
        return now + timedelta(seconds=parsed)
    parsed.nowfun = lambda: now
    return now + parsed.remaining_estimate(now)


def _path_fields(kind: str | None) -> tuple[str, ...]:
    """The config keys a kind's reader reads as files on the server (``path_fields``), checked against
    ``STEWARD_SOURCE_ALLOWED_PATHS`` here and again by the reader."""
    from sources.readers import reader_for

    if not kind:
        return ()
    try:
        return tuple(getattr(reader_for(kind), "path_fields", ()))
    except SourceError:
        return ()


def _validate(data: dict[str, Any], *, partial: bool, kind: str | None = None) -> dict[str, Any]:
    from sources.readers import reader_kinds

    problems = ProblemCollector()
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.add("name", "1 to 100 lowercase letters, digits, - or _, starting with a letter or digit.")
        else:
            out["name"] = name
    if "kind" in data or not partial:
        kind = data.get("kind")
        if kind not in reader_kinds():
            problems.add("kind", f"One of: {', '.join(reader_kinds())}.", "invalid_choice")
        else:
            out["kind"] = kind
    if "config" in data:
        config = data["config"]
        if not isinstance(config, dict):
            problems.add("config", "An object (host, port, database, ...).", "invalid_type")
        else:
            secretish = sorted(k for k in config if k.lower() in ("password", "secret", "token", "credentials"))
            if secretish:
                problems.add(f"config.{secretish[0]}", "Secrets go in credentials (stored encrypted).", "secret")
            allowed = allowed_paths()
            for key in _path_fields(out.get("kind") or kind):
                if config.get(key) not in (None, ""):
                    problem = path_problem(config[key], allowed)
                    if problem:
                        problems.add(f"config.{key}", problem, "path_not_allowed")
            out["config"] = config
    if "credentials" in data:
        credentials = data["credentials"]
        if credentials is None:
            credentials = {}
        if not isinstance(credentials, dict) or not all(isinstance(v, str | int) for v in credentials.values()):
            problems.add("credentials", 'An object of strings, e.g. {"user": "...", "password": "..."}.')
        else:
            out["credentials"] = credentials
    if "schedule" in data:
        schedule = data["schedule"]
        if schedule is None:
            schedule = ""
        if not isinstance(schedule, str):
            problems.add("schedule", 'Seconds ("3600") or a crontab line ("0 3 * * *").', "invalid_type")
        else:
            try:
                _parse_schedule(schedule)
                out["schedule"] = schedule.strip()
            except ValueError as exc:
                problems.add("schedule", str(exc))
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            problems.add("enabled", "true or false.", "invalid_type")
        else:
            out["enabled"] = data["enabled"]
    if "owner" in data:
        owner = data["owner"]
        if owner in (None, ""):
            out["owner"] = None
        else:
            user = get_user_model().objects.filter(username=owner).first() if isinstance(owner, str) else None
            if user is None:
                problems.add("owner", f"No user {owner!r}.", "not_found")
            else:
                out["owner"] = user
    problems.raise_if_any()
    return out


def _write(source: Source, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if key == "credentials":
            source.credentials_encrypted = crypto.encrypt(value)
        else:
            setattr(source, key, value)
    if "schedule" in values or "enabled" in values or source.next_run_at is None:
        source.next_run_at = next_run(source.schedule) if source.enabled else None


def _duplicate(name: str) -> None:
    message = f"A source named {name!r} exists."
    raise Conflict(f"name: {message}", problems=[FieldProblem("name", message, "duplicate")])


@transaction.atomic
def source_create(*, actor: Actor, data: dict[str, Any]) -> Source:
    sources_check(actor)
    values = _validate(data, partial=False)
    if Source.objects.filter(name=values["name"]).exists():
        _duplicate(values["name"])
    source = Source(owner=user_or_none(actor))
    _write(source, values)
    source.save()
    audit.record(actor=actor, action=SOURCE_CREATE, target=source, after=source.snapshot())
    return source


@transaction.atomic
def source_update(*, actor: Actor, source: Source, data: dict[str, Any]) -> Source:
    sources_check(actor)
    values = _validate(data, partial=True, kind=source.kind)
    if "name" in values and Source.objects.filter(name=values["name"]).exclude(pk=source.pk).exists():
        _duplicate(values["name"])
    source = Source.objects.select_for_update().get(pk=source.pk)
    before = source.snapshot()
    _write(source, values)
    source.updated_at = timezone.now()
    source.save()
    after = source.snapshot()
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if "credentials" in values:
        changed["credentials"] = "changed"  # that they changed, never what they are
    if changed:
        audit.record(
            actor=actor,
            action=SOURCE_UPDATE,
            target=source,
            before={k: before.get(k) for k in changed if k in before},
            after=changed,
        )
    return source


@transaction.atomic
def source_delete(*, actor: Actor, source: Source) -> None:
    """Delete the source and its runs; the datasets it crawled stay in the catalog as they are."""
    sources_check(actor)
    before = source.snapshot()
    audit.record(actor=actor, action=SOURCE_DELETE, target=source, before=before)
    source.delete()
