"""Compliance pages: ask for a reconstruction, read a stored report (compliance officers and admins)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from catalog.models import Dataset
from compliance import services as compliance
from compliance.api.views import report_view
from compliance.models import ComplianceReport
from compliance.reconstruction import Query
from steward.api.params import parse_time, parse_uuid
from steward.errors import DomainError
from steward.identity import has_role

RECENT_REPORTS = 20


def _forbidden(request: HttpRequest) -> HttpResponse | None:
    if has_role(request.user, *compliance.REPORT_READERS):
        return None
    return render(
        request,
        "frontend/compliance_forbidden.html",
        {"message": "Only compliance officers and admins reconstruct past decisions."},
        status=403,
    )


@login_required
def compliance_home(request: HttpRequest) -> HttpResponse:
    if (denied := _forbidden(request)) is not None:
        return denied
    form = {"result": "", "model_version": "", "at": ""}
    error: dict[str, Any] | None = None
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            query = Query(
                result=parse_uuid(form["result"], "result"),
                model_version=parse_uuid(form["model_version"], "model_version"),
                at=parse_time(form["at"], "at"),
            )
            report = compliance.report_create(actor=request.user, query=query)
        except DomainError as exc:
            error = {"status": exc.status, "message": exc.message, "problems": getattr(exc, "problems", [])}
        else:
            return redirect("frontend:compliance-report", pk=report.pk)
    reports = ComplianceReport.objects.select_related("requested_by")[:RECENT_REPORTS]
    return render(
        request,
        "frontend/compliance.html",
        {"form": form, "error": error, "reports": reports},
        status=error["status"] if error else 200,
    )


def _names(reconstruction: dict[str, Any]) -> dict[str, str]:
    """Display names for the dataset ids a report mentions (as recorded then, else as now)."""
    names: dict[str, str] = {}
    for item in reconstruction["training"]["inputs"]:
        state = item["at_training"] or item["at_time"]
        if state:
            names[item["dataset"]] = f"{state['namespace']}/{state['name']}"
    for node in (reconstruction.get("lineage") or {}).get("datasets", []):
        names.setdefault(node["id"], f"{node['namespace']}/{node['name']}")
    missing = {c["dataset"] for c in reconstruction["changes_since"] if c.get("dataset")} - set(names)
    for pk, ns, name in Dataset.objects.filter(pk__in=[UUID(m) for m in missing]).values_list(
        "pk", "namespace", "name"
    ):
        names[str(pk)] = f"{ns}/{name}"
    return names


@login_required
def compliance_report(request: HttpRequest, pk: UUID) -> HttpResponse:
    if (denied := _forbidden(request)) is not None:
        return denied
    report = ComplianceReport.objects.filter(pk=pk).first()
    if report is None:
        raise Http404("No such compliance report.")
    compliance.report_viewed(actor=request.user, report=report, form="html")
    reconstruction = report.bundle["reconstruction"]
    names = _names(reconstruction)
    for change in reconstruction["changes_since"]:
        change["dataset_name"] = names.get(change.get("dataset", ""), change.get("dataset"))
    for edge in (reconstruction.get("lineage") or {}).get("edges", []):
        edge["source_name"] = names.get(edge["source"], edge["source"])
        edge["target_name"] = names.get(edge["target"], edge["target"])
    context = {
        "report": report,
        "meta": report_view(report, with_bundle=False),
        "r": reconstruction,
        "bundle_url": reverse("compliance-report-bundle", args=[report.pk]),
    }
    return render(request, "frontend/compliance_report.html", context)
