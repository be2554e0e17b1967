"""Per-user workspace quotas from settings, and the checks that name what is over.

``STEWARD_WORKSPACE_QUOTA`` is everyone's quota; ``STEWARD_WORKSPACE_USER_QUOTAS`` overrides parts of it
for named users. ``workspaces`` counts the user's workspaces not deleted (stopped ones included: they keep
storage); ``cpu``, ``memory`` and ``gpu`` are the totals of the workspaces they want running (a stopped
workspace holds no compute, so starting one checks again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, Sum

from steward.errors import FieldProblem, ValidationFailed
from workspaces.choices import DesiredState
from workspaces.models import Workspace
from workspaces.quantities import format_cpu, format_memory, parse_cpu, parse_memory

__all__ = ["Quota", "Usage", "check_quota", "quota_for", "usage_of"]


@dataclass(frozen=True)
class Quota:
    """One user's limits: a number of workspaces, and compute of the running ones (millicores, bytes, GPUs)."""

    workspaces: int
    cpu_millis: int
    memory_bytes: int
    gpu: int


@dataclass(frozen=True)
class Usage:
    workspaces: int
    cpu_millis: int
    memory_bytes: int
    gpu: int


def quota_for(user: Any) -> Quota:
    """The user's quota: the default from settings with their overrides, if any."""
    raw = {**settings.STEWARD_WORKSPACE_QUOTA, **settings.STEWARD_WORKSPACE_USER_QUOTAS.get(user.get_username(), {})}
    try:
        return Quota(
            workspaces=int(raw["workspaces"]),
            cpu_millis=parse_cpu(raw["cpu"]),
            memory_bytes=parse_memory(raw["memory"]),
            gpu=int(raw.get("gpu", 0)),
        )
    except (KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"STEWARD_WORKSPACE_QUOTA (or a user's override) is invalid: {exc}") from exc


def usage_of(user: Any, *, exclude: UUID | None = None) -> Usage:
    """What the user's workspaces use now (one query); ``exclude``: leave one workspace out."""
    qs = Workspace.objects.filter(owner=user).exclude(desired_state=DesiredState.DELETED)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    running = Q(desired_state=DesiredState.RUNNING)
    row = qs.aggregate(
        n=Count("pk"),
        cpu=Sum("cpu_millis", filter=running),
        memory=Sum("memory_bytes", filter=running),
        gpu=Sum("gpu", filter=running),
    )
    return Usage(row["n"] or 0, row["cpu"] or 0, row["memory"] or 0, row["gpu"] or 0)


def check_quota(
    user: Any, *, cpu_millis: int, memory_bytes: int, gpu: int, new: bool, exclude: UUID | None = None
) -> None:
    """Raise ``ValidationFailed`` (400) naming each resource over the user's quota if this workspace runs.

    ``new``: a workspace is being created (it counts against ``workspaces`` too).
    """
    quota, used = quota_for(user), usage_of(user, exclude=exclude)
    problems: list[FieldProblem] = []
    if new and used.workspaces + 1 > quota.workspaces:
        problems.append(
            FieldProblem(
                None,
                f"You have {used.workspaces} workspaces, the most your quota allows ({quota.workspaces}); "
                "delete one first.",
                "workspace_quota",
            )
        )
    checks = (
        ("resources.cpu", cpu_millis, used.cpu_millis, quota.cpu_millis, format_cpu, "CPU"),
        ("resources.memory", memory_bytes, used.memory_bytes, quota.memory_bytes, format_memory, "memory"),
        ("resources.gpu", gpu, used.gpu, quota.gpu, str, "GPUs"),
    )
    for field, asked, in_use, limit, fmt, what in checks:
        if asked and in_use + asked > limit:
            problems.append(
                FieldProblem(
                    field,
                    f"Asks for {fmt(asked)} {what}, but your quota is {fmt(limit) if limit else '0'} and "
                    f"{fmt(in_use) if in_use else '0'} is in use by your running workspaces; stop one or ask for less.",
                    "over_quota",
                )
            )
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first.field}: {first.message}" if first.field else first.message, problems=problems)
