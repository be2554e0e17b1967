"""The access policy: everyone signed in reads it, its versions and the diff between two; admins edit it with a
per-level form, stored as a new version by ``governance.services.policy.policy_update`` (the API's service)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from frontend.policy_form import policy_document_from_form, policy_form_context
from governance.policy import policy_diff
from governance.selectors import policy_current, policy_version_get, policy_versions
from governance.services.policy import policy_can_edit, policy_update
from steward.errors import DomainError, PermissionDenied, ValidationFailed


def _version_param(request: HttpRequest, name: str, default: int) -> int:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else default


@login_required
def policy_page(request: HttpRequest) -> HttpResponse:
    current = policy_current()
    versions = policy_versions()
    newer = _version_param(request, "b", current.version)
    older = _version_param(request, "a", max(newer - 1, 0))
    a, b = policy_version_get(older), policy_version_get(newer)
    context = {
        "current": current,
        "versions": versions,
        "can_edit": policy_can_edit(request.user),
        "a": a,
        "b": b,
        "a_version": older,
        "b_version": newer,
        "changes": policy_diff(a.document(), b.document()) if a and b else None,
    }
    return render(request, "frontend/policy.html", context, status=200 if a and b else 404)


@login_required
def policy_edit(request: HttpRequest) -> HttpResponse:
    current = policy_current()
    document = current.document()
    error: DomainError | None = None
    if not policy_can_edit(request.user):
        error = PermissionDenied("Only admins change the access policy.")
    elif request.method == "POST":
        document = policy_document_from_form(request.POST)
        base = request.POST.get("base_version", "")
        try:
            new, created = policy_update(
                actor=request.user,
                document=document,
                note=request.POST.get("note", "").strip(),
                base_version=int(base) if base.isdigit() else None,
            )
        except DomainError as exc:
            error = exc
        else:
            if not created:
                return redirect("frontend:policy")
            return redirect(reverse("frontend:policy") + f"?a={current.version}&b={new.version}#diff")
    invalid = error if isinstance(error, ValidationFailed) else None
    context = {
        "current": current,
        "form": policy_form_context(document, invalid),
        "error": None if invalid else error,
        "invalid": invalid,
        "note": request.POST.get("note", ""),
        "can_edit": not isinstance(error, PermissionDenied),
    }
    return render(request, "frontend/policy_edit.html", context, status=error.status if error else 200)
