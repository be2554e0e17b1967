"""The tag vocabulary: everyone signed in reads it; stewards, privacy officers and admins create, change and
delete tags through ``catalog.services`` (the API's services, which check the role)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog import permissions, services
from catalog.classification import levels
from catalog.models import Tag
from steward.errors import DomainError, PermissionDenied


def _tag_or_404(pk: int) -> Tag:
    tag = Tag.objects.filter(pk=pk).first()
    if tag is None:
        raise Http404("No such tag.")
    return tag


def _list(request: HttpRequest, form: Any = None, error: DomainError | None = None) -> HttpResponse:
    context = {
        "tags": Tag.objects.all(),
        "levels": levels(),
        "can_edit": permissions.can_curate_tags(request.user),
        "form": form or {"propagates": "1"},
        "error": error,
    }
    return render(request, "frontend/tag_list.html", context, status=error.status if error else 200)


@login_required
def tag_list(request: HttpRequest) -> HttpResponse:
    return _list(request)


@login_required
@require_POST
def tag_new(request: HttpRequest) -> HttpResponse:
    try:
        tag = services.tag_create(
            actor=request.user,
            key=request.POST.get("key", "").strip(),
            description=request.POST.get("description", "").strip(),
            implied_level=request.POST.get("implied_level", ""),
            propagates=request.POST.get("propagates") == "1",
        )
    except DomainError as exc:
        return _list(request, request.POST, exc)
    return redirect(reverse("frontend:tags") + f"#tag-{tag.pk}")


@login_required
def tag_edit(request: HttpRequest, pk: int) -> HttpResponse:
    tag = _tag_or_404(pk)
    error: DomainError | None = None
    form: Any = {"description": tag.description, "implied_level": tag.implied_level, "propagates": tag.propagates}
    if not permissions.can_curate_tags(request.user):
        error = PermissionDenied("Only data stewards, privacy officers and admins manage the tag vocabulary.")
    elif request.method == "POST":
        form = {
            "description": request.POST.get("description", "").strip(),
            "implied_level": request.POST.get("implied_level", ""),
            "propagates": request.POST.get("propagates") == "1",
        }
        try:
            if "delete" in request.POST:
                services.tag_delete(actor=request.user, tag=tag)
                return redirect("frontend:tags")
            services.tag_update(actor=request.user, tag=tag, **form)
        except DomainError as exc:
            error = exc
        else:
            return redirect(reverse("frontend:tags") + f"#tag-{tag.pk}")
    can_edit = not isinstance(error, PermissionDenied)
    context = {"tag": tag, "levels": levels(), "form": form, "error": error, "can_edit": can_edit}
    return render(request, "frontend/tag_edit.html", context, status=error.status if error else 200)
