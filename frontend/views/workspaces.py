"""Workspace pages: list, create (template, resources, datasets from my grants), one workspace, stop, start,
delete. Every write goes through ``workspaces.services``, as the API's do."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from governance.selectors import grants_valid_at
from steward.errors import DomainError, NotFound, ValidationFailed
from workspaces import selectors, services


def _workspace_or_404(request: HttpRequest, pk: UUID) -> Any:
    try:
        return selectors.workspace_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such workspace.") from None


@login_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    rows = [(w, selectors.can_manage(request.user, w)) for w in selectors.workspace_list(user=request.user)[:200]]
    return render(request, "frontend/workspace_list.html", {"rows": rows})


def _my_grants_now(request: HttpRequest) -> list[Any]:
    """The user's own grants valid now: the datasets a new workspace may mount."""
    grants = grants_valid_at(at=timezone.now(), user_id=request.user.pk).select_related("dataset")
    return sorted(grants, key=lambda g: g.dataset.name)


def _resources(post: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for key in ("cpu", "memory"):
        if (post.get(key) or "").strip():
            resources[key] = post[key].strip()
    gpu = (post.get("gpu") or "").strip()
    if gpu:
        if not gpu.isdigit():
            raise ValidationFailed.one("resources.gpu", "A whole number of GPUs.", "invalid_gpu")
        resources["gpu"] = int(gpu)
    return resources


@login_required
def workspace_new(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "templates": selectors.template_list(),
        "grants": _my_grants_now(request),
        "form": request.POST if request.method == "POST" else request.GET,
        "chosen": (request.POST if request.method == "POST" else request.GET).getlist("dataset"),
        "error": None,
    }
    if request.method == "POST":
        try:
            created = services.workspace_create(
                actor=request.user,
                template=request.POST.get("template", ""),
                datasets=[UUID(pk) for pk in request.POST.getlist("dataset") if _is_uuid(pk)],
                resources=_resources(request.POST),
                name=request.POST.get("name", ""),
                start="1" in request.POST.getlist("start"),
            )
        except DomainError as exc:
            context["error"] = exc
            return render(request, "frontend/workspace_new.html", context, status=exc.status)
        return redirect("frontend:workspace", pk=created.pk)
    return render(request, "frontend/workspace_new.html", context)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


@login_required
def workspace_detail(request: HttpRequest, pk: UUID, error: DomainError | None = None) -> HttpResponse:
    workspace = _workspace_or_404(request, pk)
    context = {"w": workspace, "can_manage": selectors.can_manage(request.user, workspace), "error": error}
    return render(request, "frontend/workspace_detail.html", context, status=error.status if error else 200)


def _change(request: HttpRequest, pk: UUID, change: Any) -> HttpResponse:
    workspace = _workspace_or_404(request, pk)
    try:
        change(actor=request.user, workspace=workspace)
    except DomainError as exc:
        return workspace_detail(request, pk, exc)
    return redirect("frontend:workspace", pk=pk)


@login_required
@require_POST
def workspace_stop(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _change(request, pk, services.workspace_stop)


@login_required
@require_POST
def workspace_start(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _change(request, pk, services.workspace_start)


@login_required
@require_POST
def workspace_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _change(request, pk, services.workspace_delete)
