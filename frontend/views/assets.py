"""Asset pages: datasets, models and the tag vocabulary."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog import permissions, selectors, services
from catalog.classification import levels
from catalog.models import Tag
from catalog.services.popularity import popularity_record
from frontend.htmx import is_htmx
from frontend.views.lineage import lineage_sections, propagated_tags
from governance.portal import access_standing
from lineage.selectors import dataset_versions
from steward.errors import DomainError, NotFound


def _dataset_or_404(request: HttpRequest, pk: str):
    try:
        return selectors.dataset_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such dataset.") from None


def _page_key(value: str | None) -> tuple[str, str] | None:
    """A page key from the URL (``after``/``before``): base64 of ``[name, namespace]``; anything else is ignored
    (the first page), as a stale or hand-edited link should still show a list."""
    if not value:
        return None
    try:
        key = json.loads(urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) and "\x00" not in k for k in key):
        return key[0], key[1]
    return None


def _page_link(request: HttpRequest, direction: str, key: tuple[str, str]) -> str:
    params = request.GET.copy()
    for name in ("after", "before", "page"):
        params.pop(name, None)
    params[direction] = urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")
    return "?" + params.urlencode()


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key) for key in ("platform", "classification", "tag")}
    page = selectors.dataset_page(
        user=request.user,
        filters=filters,
        after=_page_key(request.GET.get("after")),
        before=_page_key(request.GET.get("before")),
    )
    first = request.GET.copy()
    for name in ("after", "before", "page"):
        first.pop(name, None)
    return render(
        request,
        "frontend/dataset_list.html",
        {
            "page": page,
            "next_url": _page_link(request, "after", page.next_key) if page.next_key else "",
            "previous_url": _page_link(request, "before", page.previous_key) if page.previous_key else "",
            "first_url": "?" + first.urlencode(),
            "filters": filters,
            "levels": levels(),
            "tags": Tag.objects.all(),
            "platforms": selectors.dataset_platforms(user=request.user),
        },
    )


# The dataset page's tabs (server-rendered; htmx loads one at a time): slug -> label.
DATASET_TABS = {
    "schema": "Schema",
    "lineage": "Lineage",
    "access": "Access",
    "versions": "Versions",
    "history": "History",
}


def _dataset_context(request: HttpRequest, dataset, error: str = "") -> dict:
    field_tags: dict[int, list[str]] = {}
    dataset_tags: list[str] = []
    for a in dataset.tag_assignments.all():
        if a.field_id is None:
            dataset_tags.append(a.tag.key)
        else:
            field_tags.setdefault(a.field_id, []).append(a.tag.key)
    propagated = propagated_tags(request.user, dataset)
    arrived: dict[str, list[dict[str, Any]]] = {}
    for p in propagated:
        arrived.setdefault(p["field"] or "", []).append(p)
    return {
        "dataset": dataset,
        "dataset_tags": sorted(dataset_tags),
        "fields": [(f, sorted(field_tags.get(f.pk, [])), arrived.get(f.name, [])) for f in dataset.fields.all()],
        "can_tag": permissions.can_tag_asset(request.user, dataset),
        "all_tags": Tag.objects.all(),
        "propagated_tags": propagated,
        "standing": access_standing(user=request.user, dataset=dataset),
        "in_cart": str(dataset.pk) in request.session.get("access_cart", []),
        "error": error,
    }


def _tab_context(request: HttpRequest, dataset, tab: str) -> dict:
    """What one tab shows, from the same selectors as the API."""
    if tab == "schema":
        return _dataset_context(request, dataset)
    context: dict[str, Any] = {"dataset": dataset}
    if tab == "lineage":
        context["sections"] = lineage_sections(request.user, dataset, direction="both", depth=1)
        context["form"] = {"depth": 1}
    elif tab == "access":
        context["standing"] = access_standing(user=request.user, dataset=dataset)
        context["in_cart"] = str(dataset.pk) in request.session.get("access_cart", [])
    elif tab == "versions":
        context["versions"] = dataset_versions(user=request.user, pk=dataset.pk)["results"]
    elif tab == "history":
        context["history"] = selectors.dataset_history(user=request.user, pk=dataset.pk)
    return context


def _tab(request: HttpRequest) -> str:
    tab = request.GET.get("tab") or "schema"
    if tab not in DATASET_TABS:
        raise Http404(f"No tab {tab!r}; the tabs are {', '.join(DATASET_TABS)}.")
    return tab


@login_required
def dataset_detail(request: HttpRequest, pk: str) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    tab = _tab(request)
    popularity_record(kind="dataset", ids=[dataset.pk], signal="open")
    return render(request, "frontend/dataset_detail.html", _page_context(request, dataset, tab))


def _page_context(request: HttpRequest, dataset, tab: str, error: str = "") -> dict:
    context = {**_dataset_context(request, dataset, error), **_tab_context(request, dataset, tab)}
    return {**context, "error": error, "tab": tab, "tabs": DATASET_TABS}


@login_required
def dataset_tab(request: HttpRequest, pk: str) -> HttpResponse:
    """One tab's panel (htmx); without htmx, the whole page on that tab."""
    if not is_htmx(request):
        query = request.GET.urlencode()
        return redirect(reverse("frontend:dataset", args=[pk]) + (f"?{query}" if query else ""))
    dataset = _dataset_or_404(request, pk)
    tab = _tab(request)
    context = {**_tab_context(request, dataset, tab), "tab": tab, "tabs": DATASET_TABS}
    return render(request, "frontend/partials/dataset_tab.html", context)


def _after_tag_change(request: HttpRequest, pk: str, error: DomainError | None) -> HttpResponse:
    """htmx: the re-rendered tags area (the error shown in it); otherwise back to the page, or the page with
    the error and its status."""
    dataset = _dataset_or_404(request, pk)
    message = error.message if error else ""
    if is_htmx(request):
        context = {**_dataset_context(request, dataset, message), "refresh_levels": True}
        return render(request, "frontend/partials/dataset_tags.html", context)
    if error:
        context = _page_context(request, dataset, "schema", message)
        return render(request, "frontend/dataset_detail.html", context, status=error.status)
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
