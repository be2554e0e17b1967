"""The audit-log page: filter by actor, action, object and time; verify the hash chain (compliance officers and
admins, as the API)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from governance.selectors import audit_list
from ledger import audit
from ledger.models import AuditEvent
from steward.api.params import parse_time
from steward.errors import DomainError, PermissionDenied

FILTERS = ("actor", "action", "object", "since", "until")


def _page(request: HttpRequest, verification: dict[str, Any] | None = None) -> HttpResponse:
    form = {k: (request.GET.get(k) or "").strip() for k in FILTERS}
    context: dict[str, Any] = {"form": form, "verification": verification, "error": None}
    try:
        filters = {
            **form,
            "since": parse_time(form["since"] or None, "since"),
            "until": parse_time(form["until"] or None, "until"),
        }
        events = audit_list(user=request.user, filters=filters).order_by("-seq")
    except PermissionDenied as exc:
        return render(request, "frontend/compliance_forbidden.html", {"message": exc.message}, status=403)
    except DomainError as exc:
        context["error"] = exc
        return render(request, "frontend/audit.html", context, status=exc.status)
    context["page"] = Paginator(events, 50).get_page(request.GET.get("page"))
    context["query"] = "&".join(f"{k}={v}" for k, v in form.items() if v)
    return render(request, "frontend/audit.html", context)


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Recompute the chain (a POST: it reads every event) and show the outcome above the log."""
    try:
        audit_list(user=request.user, filters={})
    except PermissionDenied as exc:
        return render(request, "frontend/compliance_forbidden.html", {"message": exc.message}, status=403)
    broken = audit.verify()
    return _page(request, {"ok": broken is None, "checked": AuditEvent.objects.count(), "broken": broken})
