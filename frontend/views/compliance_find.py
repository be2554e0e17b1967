"""Finding what to reconstruct without knowing ids: model → versions → deployments → results (searchable by
model, environment and time), each with a "Reconstruct" button that POSTs to the compliance page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import selectors
from compliance.services import REPORT_READERS
from steward.api.params import parse_time
from steward.errors import DomainError
from steward.identity import has_role

RESULTS_SHOWN = 100


@login_required
def compliance_find(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, *REPORT_READERS):
        return render(
            request,
            "frontend/compliance_forbidden.html",
            {"message": "Only compliance officers and admins reconstruct past decisions."},
            status=403,
        )
    form = {k: (request.GET.get(k) or "").strip() for k in ("model", "environment", "from", "to")}
    context: dict[str, Any] = {"form": form, "models": selectors.model_list(user=request.user), "error": None}
    if form["model"]:
        try:
            filters = {
                "model": form["model"],
                "environment": form["environment"],
                "from": parse_time(form["from"] or None, "from"),
                "to": parse_time(form["to"] or None, "to"),
            }
            deployments = selectors.deployment_list(
                user=request.user, filters={"model": form["model"], "environment": form["environment"]}
            ).order_by("-deployed_from")
            context["deployments"] = deployments
            context["environments"] = sorted(
                set(
                    selectors.deployment_list(user=request.user, filters={"model": form["model"]}).values_list(
                        "environment", flat=True
                    )
                )
            )
            context["results"] = selectors.result_list(user=request.user, filters=filters).order_by("-produced_at")[
                :RESULTS_SHOWN
            ]
        except DomainError as exc:
            context["error"] = exc
            return render(request, "frontend/compliance_find.html", context, status=exc.status)
    return render(request, "frontend/compliance_find.html", context)
