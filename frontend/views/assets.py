"""Asset pages: datasets, models and the tag vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import permissions, selectors, services
from catalog.classification import levels
from catalog.models import Tag
from catalog.services.popularity import popularity_record
from frontend.htmx import is_htmx
from frontend.views.lineage import propagated_tags
from governance.portal import access_standing
from steward.errors import DomainError, NotFound


def _dataset_or_404(request: HttpRequest, pk: str):
    try:
        return selectors.dataset_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such dataset.") from None


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key) for key in ("platform", "classification", "tag")}
    page = Paginator(
        selectors.dataset_list(user=request.user, filters=filters).order_by("name", "namespace"), 50
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "frontend/dataset_list.html",
        {
            "page": page,
            "filters": filters,
            "levels": levels(),
            "tags": Tag.objects.all(),
            "platforms": selectors.dataset_list(user=request.user)
            .order_by("platform")
            .values_list("platform", flat=True)
            .distinct(),
        },
    )


def _dataset_context(request: HttpRequest, dataset, error: str = "") -> dict:
    field_tags: dict[int, list[str]] = {}
    dataset_tags: list[str] = []
    for a in dataset.tag_assignments.all():
        if a.field_id is None:
            dataset_tags.append(a.tag.key)
        else:
            field_tags.setdefault(a.field_id, []).append(a.tag.key)
    return {
        "dataset": dataset,
        "dataset_tags": sorted(dataset_tags),
        "fields": [(f, sorted(field_tags.get(f.pk, []))) for f in dataset.fields.all()],
        "can_tag": permissions.can_tag_asset(request.user, dataset),
        "all_tags": Tag.objects.all(),
        "propagated_tags": propagated_tags(request.user, dataset),
        "standing": access_standing(user=request.user, dataset=dataset),
        "in_cart": str(dataset.pk) in request.session.get("access_cart", []),
        "error": error,
    }


@login_required
def dataset_detail(request: HttpRequest, pk: str) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    popularity_record(kind="dataset", ids=[dataset.pk], signal="open")
    return render(request, "frontend/dataset_detail.html", _dataset_context(request, dataset))


def _after_tag_change(request: HttpRequest, pk: str, error: DomainError | None) -> HttpResponse:
    """htmx: the re-rendered tags area (the error shown in it); otherwise back to the page, or the page with
    the error and its status."""
    dataset = _dataset_or_404(request, pk)
    message = error.message if error else ""
    if is_htmx(request):
        return render(request, "frontend/partials/dataset_tags.html", _dataset_context(request, dataset, message))
    if error:
        return render(
            request, "frontend/dataset_detail.html", _dataset_context(request, dataset, message), status=error.status
        )
    return redirect("frontend:dataset", pk=pk)


def _tag_change(request: HttpRequest, pk: str, change: Callable[..., Any]) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    error = None
    try:
        change(
            actor=request.user,
            dataset=dataset,
            key=request.POST.get("key", ""),
            field_name=request.POST.get("field") or None,
        )
    except DomainError as exc:
        error = exc
    return _after_tag_change(request, pk, error)


@login_required
@require_POST
def dataset_tag_add(request: HttpRequest, pk: str) -> HttpResponse:
    return _tag_change(request, pk, services.dataset_tag_add)


@login_required
@require_POST
def dataset_tag_remove(request: HttpRequest, pk: str) -> HttpResponse:
    return _tag_change(request, pk, services.dataset_tag_remove)


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/model_list.html", {"models": selectors.model_list(user=request.user)})


@login_required
def model_detail(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        model = selectors.model_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such model.") from None
    return render(
        request, "frontend/model_detail.html", {"model": model, "versions": model.versions.order_by("-created_at")}
    )


@login_required
def tag_list(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/tag_list.html", {"tags": Tag.objects.all(), "levels": levels()})
