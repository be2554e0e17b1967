"""Lineage pages: the graph around a dataset, why a tag is there, and declassification requests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from catalog import selectors as catalog_selectors
from catalog.models import Dataset, Tag
from frontend.htmx import is_htmx
from lineage import permissions, selectors
from lineage.models import Declassification, DeclassificationState, Job
from lineage.services import declassify
from steward.api.params import parse_int
from steward.errors import DomainError, NotFound, PermissionDenied, ValidationFailed

DIRECTIONS = (("both", "Upstream and downstream"), ("upstream", "Upstream"), ("downstream", "Downstream"))
DEFAULT_DEPTH = 3
MAX_DEPTH = 5
DECLASSIFICATION_ROWS = 200
OPEN_ALL_UP_TO = 40  # up to this many datasets every hop is shown open; beyond, only the first hop
JOB_CHOICES = 1000
NOTICES = {
    "requested": "Request sent: a data steward who did not ask decides it.",
    "approved": "Approved: the tags stop at this job once propagation has run.",
    "rejected": "Rejected.",
}


def _problem(exc: DomainError) -> dict[str, Any]:
    return {"status": exc.status, "message": exc.message}


def _dataset_or_404(request: HttpRequest, pk: Any) -> Dataset:
    try:
        return catalog_selectors.dataset_get(user=request.user, pk=pk, with_fields=False)
    except NotFound:
        raise Http404("No such dataset.") from None


def parse_at(value: str | None) -> datetime | None:
    """An "as of" time from a form: ISO 8601, with an offset or without one (then it is UTC)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "zZ" else value)
    except ValueError:
        raise ValidationFailed.one("at", f"Not a date and time: {value[:64]!r}.", "invalid_datetime") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _at_input(at: datetime | None) -> str:
    """The value of a ``datetime-local`` input (UTC) for ``at``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if at else ""


def explain_url(dataset_id: Any, tag: str, field: str | None = None, at: datetime | None = None) -> str:
    query = {"tag": tag, **({"field": field} if field else {}), **({"at": at.isoformat()} if at else {})}
    return reverse("frontend:dataset-explain", args=[dataset_id]) + "?" + urlencode(query)


def propagated_tags(user: Any, dataset: Dataset) -> list[dict[str, Any]]:
    """The dataset's propagated tags (``dataset_tags``), each with the address of its "why?" page."""
    return [
        {**p, "since_at": datetime.fromisoformat(p["since"]), "why_url": explain_url(dataset.pk, p["tag"], p["field"])}
        for p in selectors.dataset_tags(user=user, pk=dataset.pk)["propagated"]
    ]


# --- the lineage page ----------------------------------------------------------------------------------


def _controls(params: QueryDict) -> dict[str, Any]:
    """The form's values as typed, to show again (and for lineage.js to read)."""
    return {
        "direction": params.get("direction") or "both",
        "depth": params.get("depth") or str(DEFAULT_DEPTH),
        "columns": params.get("columns", "").lower() in ("1", "on", "true", "yes"),
        "at": params.get("at", ""),
    }


def _query(form: dict[str, Any]) -> dict[str, Any]:
    """The form's values parsed for ``lineage_graph``; a bad value is a ``ValidationFailed`` naming it."""
    if form["direction"] not in dict(DIRECTIONS):
        raise ValidationFailed.one("direction", "Use upstream, downstream or both.", "invalid_choice")
    depth = parse_int(form["depth"], "depth", DEFAULT_DEPTH)
    if not 1 <= depth <= MAX_DEPTH:
        raise ValidationFailed.one("depth", f"Must be between 1 and {MAX_DEPTH}.", "out_of_range")
    return {"direction": form["direction"], "depth": depth, "at": parse_at(form["at"])}


def _neighbours(graph: dict[str, Any], way: str) -> list[dict[str, Any]]:
    """Datasets of a one-way graph other than the root, nearest first, each with the jobs linking it."""
    jobs = {n["id"]: n for n in graph["nodes"] if n["kind"] == "job"}
    via: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        if way == "downstream" and edge["kind"] == "output":
            via.setdefault(edge["target"], set()).add(jobs[edge["source"]].get("name", "a hidden job"))
        elif way == "upstream" and edge["kind"] == "input":
            via.setdefault(edge["source"], set()).add(jobs[edge["target"]].get("name", "a hidden job"))
    # The addresses are built once and filled per row: ``{% url %}`` per row costs more than the rest of the row
    # when the list has hundreds of datasets.
    zero = "00000000-0000-0000-0000-000000000000"
    page, lineage = reverse("frontend:dataset", args=[zero]), reverse("frontend:dataset-lineage", args=[zero])
    return [
        {
            **node,
            "via": sorted(via.get(node["id"], ())),
            "url": page.replace(zero, str(node.get("dataset_id", ""))),
            "lineage_url": lineage.replace(zero, str(node.get("dataset_id", ""))),
        }
        for node in graph["nodes"]
        if node["kind"] == "dataset" and node["id"] != graph["root"]
    ]


def lineage_sections(
    user: Any, dataset: Dataset, *, direction: str, depth: int, at: datetime | None = None
) -> list[dict[str, Any]]:
    """The upstream and/or downstream datasets of ``dataset`` as lists (the lineage page and the dataset's tab)."""
    sections = []
    for way in ("upstream", "downstream") if direction == "both" else (direction,):
        graph = selectors.lineage_graph(
            user=user, namespace=dataset.namespace, name=dataset.name, direction=way, depth=depth, at=at
        )
        nodes = _neighbours(graph, way)
        sections.append(
            {
                "way": way,
                "title": way.capitalize(),
                "nodes": nodes,
                "groups": _by_hop(nodes),
                "truncated": graph["truncated"],
                "limit": graph["limit"],
            }
        )
    return sections


def _by_hop(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The datasets grouped by hops away, nearest first: a long list (hundreds of datasets at depth 5) reads as
    a few collapsed groups instead of one column the height of the page."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for node in nodes:
        groups.setdefault(node.get("depth") or 0, []).append(node)
    return [
        {"depth": depth, "nodes": members, "open": len(nodes) <= OPEN_ALL_UP_TO or i == 0}
        for i, (depth, members) in enumerate(sorted(groups.items()))
    ]


@login_required
def dataset_lineage(request: HttpRequest, pk: Any) -> HttpResponse:
    """A Cytoscape graph (drawn by lineage.js from the REST API) and, server-side, the same datasets as lists."""
    dataset = _dataset_or_404(request, pk)
    error, at = None, None
    sections: list[dict[str, Any]] = []
    form = _controls(request.GET)
    try:
        query = _query(form)
        at = query["at"]
        form["at"] = _at_input(at)
        sections = lineage_sections(
            request.user, dataset, direction=query["direction"], depth=query["depth"], at=query["at"]
        )
    except DomainError as exc:
        error = _problem(exc)
    context = {
        "dataset": dataset,
        "form": form,
        "directions": DIRECTIONS,
        "max_depth": MAX_DEPTH,
        "sections": sections,
        "at": at,
        "error": error,
        "zero_id": "00000000-0000-0000-0000-000000000000",
    }
    if is_htmx(request):
        return render(request, "frontend/partials/lineage_lists.html", context)
    return render(request, "frontend/lineage.html", context, status=error["status"] if error else 200)


# --- why a dataset carries a tag -----------------------------------------------------------------------


@login_required
def dataset_explain(request: HttpRequest, pk: Any) -> HttpResponse:
    """The path a propagated tag took to this dataset, hop by hop (hidden datasets masked by the selector)."""
    dataset = _dataset_or_404(request, pk)
    tag, field = request.GET.get("tag", "").strip(), request.GET.get("field", "").strip() or None
    why, error, at = None, None, None
    try:
        at = parse_at(request.GET.get("at"))
        why = selectors.dataset_explain(user=request.user, pk=dataset.pk, tag=tag, field=field, at=at)
    except DomainError as exc:
        error = _problem(exc)
    context = {"dataset": dataset, "tag": tag, "field": field, "at": at, "why": why, "error": error}
    return render(request, "frontend/explain.html", context, status=error["status"] if error else 200)


# --- declassifications ---------------------------------------------------------------------------------


def _job_named(text: str) -> Job:
    """A job by its name, or by ``namespace/name`` when several jobs share the name."""
    text = text.strip()
    if not text:
        raise ValidationFailed.one("job", "Name the job the tags may not cross.", "required")
    named = list(Job.objects.filter(name=text)[:2])
    if len(named) == 1:
        return named[0]
    if named:
        raise ValidationFailed.one("job", f"Several jobs are named {text!r}; write namespace/name.", "ambiguous_job")
    splits = [Q(namespace=text[:i], name=text[i + 1 :]) for i, char in enumerate(text) if char == "/"]
    found = None
    if splits:
        query = splits[0]
        for q in splits[1:]:
            query |= q
        found = Job.objects.filter(query).first()
    if found is None:
        raise ValidationFailed.one("job", f"No job named {text!r}.", "unknown_job")
    return found


def _job_choices() -> list[tuple[str, str]]:
    """(value, label) for the job picker: the name, or namespace/name when the name is not unique."""
    jobs = list(Job.objects.order_by("name", "namespace").values_list("namespace", "name")[:JOB_CHOICES])
    counts = Counter(name for _, name in jobs)
    return [(name if counts[name] == 1 else f"{namespace}/{name}", namespace) for namespace, name in jobs]


def _declassification_context(
    request: HttpRequest, *, error: DomainError | None = None, notice: str = "", form: dict[str, Any] | None = None
) -> dict[str, Any]:
    user = request.user
    can_decide = permissions.can_decide_declassification(user)
    can_request = permissions.can_request_declassification(user)
    rows = (
        Declassification.objects.select_related("job", "requested_by", "decided_by")
        .prefetch_related("tags")
        .annotate(
            pending_first=Case(
                When(state=DeclassificationState.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("pending_first", "-requested_at")[:DECLASSIFICATION_ROWS]
    )
    return {
        "rows": [
            {
                "d": d,
                "tags": sorted(t.key for t in d.tags.all()),
                "can_decide": can_decide and d.state == DeclassificationState.PENDING and d.requested_by_id != user.pk,
            }
            for d in rows
        ],
        "limit": DECLASSIFICATION_ROWS,
        "can_request": can_request,
        "jobs": _job_choices() if can_request else [],
        "tags": Tag.objects.all() if can_request else [],
        "form": form or {"job": "", "tags": [], "justification": ""},
        "error": _problem(error) if error else None,
        "notice": notice,
    }


def _after_declassification_change(
    request: HttpRequest, error: DomainError | None, done: str, **extra: Any
) -> HttpResponse:
    """htmx: the re-rendered area (errors in it, with their status); otherwise back to the page (with a notice),
    or the page with the error and its status."""
    if is_htmx(request):
        context = _declassification_context(request, error=error, notice="" if error else NOTICES[done], **extra)
        return render(request, "frontend/partials/declassifications_area.html", context)
    if error:
        context = _declassification_context(request, error=error, **extra)
        return render(request, "frontend/declassifications.html", context, status=error.status)
    return redirect(reverse("frontend:declassifications") + "?" + urlencode({"done": done}))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def declassifications(request: HttpRequest) -> HttpResponse:
    """The list of requests; POST asks for one (a job by name, tags, a justification)."""
    if request.method != "POST":
        notice = NOTICES.get(request.GET.get("done", ""), "")
        return render(request, "frontend/declassifications.html", _declassification_context(request, notice=notice))
    job = request.POST.get("job", "")[:1100]
    tags = request.POST.getlist("tags")[:100]
    justification = request.POST.get("justification", "")[:5000]
    form = {"job": job, "tags": tags, "justification": justification}
    try:
        if not permissions.can_request_declassification(request.user):
            raise PermissionDenied("Data owners, stewards, privacy officers and admins request declassifications.")
        declassify.declassification_request(
            actor=request.user,
            job_id=_job_named(job).pk,
            tag_keys=tags,
            justification=justification,
        )
    except DomainError as exc:
        return _after_declassification_change(request, exc, "requested", form=form)
    return _after_declassification_change(request, None, "requested")


@login_required
@require_POST
def declassification_decide(request: HttpRequest, pk: Any, approve: bool) -> HttpResponse:
    """Approve or reject a pending request (data stewards, never their own: the service checks)."""
    error = None
    try:
        declassify.declassification_decide(
            actor=request.user, pk=pk, approve=approve, reason=request.POST.get("reason", "")[:5000]
        )
    except DomainError as exc:
        error = exc
    return _after_declassification_change(request, error, "approved" if approve else "rejected")
