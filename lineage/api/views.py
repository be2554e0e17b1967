"""Lineage REST endpoints: OpenLineage ingestion, graph queries, jobs and declassifications."""

from __future__ import annotations

import zlib
from dataclasses import asdict
from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import TokenScopePermission
from lineage import selectors
from lineage.api.serializers import (
    DeclassificationListSerializer,
    DeclassificationSerializer,
    JobDetailSerializer,
    JobSerializer,
    LineageGraphSerializer,
    NamespaceProducerListSerializer,
    NamespaceProducerSerializer,
)
from lineage.models import Declassification, DeclassificationState, Job, NamespaceProducer
from lineage.permissions import CanProduceLineage
from lineage.services import declassify, inbox, producers
from lineage.services.ingest import ingest, job_end_edges
from steward import jsonbody
from steward.api.params import parse_body, parse_bool, parse_int, parse_time
from steward.api.schema import LOOKS_UP
from steward.errors import DomainError, ValidationFailed
from steward.identity import Role, has_role

# A batch's body may be this many times an event's limit (STEWARD_LINEAGE_MAX_EVENT_BYTES).
BATCH_BODY_EVENTS = 16


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


def _check_size(request: Request, limit: int) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # as Django reads it; the body is then empty
    if length > limit:
        raise PayloadTooLarge(f"The body is {length} bytes; at most {limit} are accepted here.")


def _payload(request: Request, limit: int) -> Any:
    """The JSON body, at most ``limit`` bytes; gzip bodies (the OpenLineage HTTP transport's
    ``compression: gzip``) are inflated, and refused with 413 once they inflate past the limit."""
    _check_size(request, limit)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return request.data
    if encoding != "gzip":
        raise exceptions.UnsupportedMediaType(encoding, f"Content-Encoding {encoding!r} is not supported; use gzip.")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(request.body, limit + 1)
    except zlib.error:
        raise exceptions.ParseError("The body is not valid gzip.") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"The body inflates to more than {limit} bytes; at most {limit} are accepted here.")
    if not inflater.eof:
        raise exceptions.ParseError("The gzip body is truncated.")
    return jsonbody.loads(body)


_RESULT = inline_serializer(
    "IngestResult",
    {
        "index": serializers.IntegerField(),
        "status": serializers.CharField(),
        "kind": serializers.CharField(),
        "run_id": serializers.CharField(allow_null=True),
        "dropped_facets": serializers.ListField(
            child=serializers.CharField(),
            help_text="Facets Steward does not use, dropped from the stored event because it was larger than "
            "STEWARD_LINEAGE_STORED_EVENT_BYTES (e.g. run.facets.spark.logicalPlan); the lineage is kept.",
        ),
    },
)


def queued_preference(prefer: str) -> tuple[bool, dict[str, str]]:
    """Whether to queue a call's events (``STEWARD_LINEAGE_INGEST=queued``, or the caller's ``Prefer:
    respond-async``, RFC 7240), and the headers that say so."""
    wanted = {p.split("=", 1)[0].strip().lower() for p in prefer.split(",")}
    if "respond-async" in wanted:
        return True, {"Preference-Applied": "respond-async"}
    return settings.STEWARD_LINEAGE_INGEST == "queued", {}


def receive_one(user: Any, body: Any, prefer: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``POST /lineage`` once the body is parsed: (status, answer, headers). Shared with ``lineage.api.fastpath``."""
    queued, headers = queued_preference(prefer)
    if queued:
        (result,) = inbox.accept(actor=user, events=[body])
        return (202 if result.status == "queued" else 200), asdict(result), headers
    (result,) = ingest(actor=user, events=[body])
    return (201 if result.status == "applied" else 200), asdict(result), {}


def receive_batch(user: Any, body: Any, prefer: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``POST /lineage/batch`` once the body is parsed: (status, answer, headers)."""
    events = body.get("events") if isinstance(body, dict) else body
    if not isinstance(events, list):
        raise ValidationFailed.one("events", 'Send {"events": [...]} or a JSON list of events.', "invalid_type")
    queued, headers = queued_preference(prefer)
    if queued:
        results = inbox.accept(actor=user, events=events, batch=True)
        code = 202 if any(r.status == "queued" for r in results) else 200
        return code, {"results": [asdict(r) for r in results]}, headers
    results = ingest(actor=user, events=events, batch=True)
    return 200, {"results": [asdict(r) for r in results]}, {}


_PREFER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="respond-async: answer 202 once the events are validated, authorised and stored; they are applied "
    "shortly after, in batches (GET /lineage/inbox shows what waits). The default follows STEWARD_LINEAGE_INGEST.",
)


class LineageIngestView(APIView):
    permission_classes = [IsAuthenticated, TokenScopePermission, CanProduceLineage]
    token_scope = "lineage:write"

    @extend_schema(
        summary="Receive one OpenLineage event (RunEvent, DatasetEvent or JobEvent)",
        parameters=[_PREFER],
        extensions={"x-steward-errors": ["503"]},
        request=inline_serializer("OpenLineageEvent", {"eventTime": serializers.CharField()}),
        responses={201: _RESULT, 200: _RESULT, 202: _RESULT},
    )
    def post(self, request: Request) -> Response:
        body = _payload(request, settings.STEWARD_LINEAGE_MAX_EVENT_BYTES)
        code, answer, headers = receive_one(request.user, body, request.META.get("HTTP_PREFER", ""))
        return Response(answer, status=code, headers=headers)


class LineageBatchView(APIView):
    permission_classes = [IsAuthenticated, TokenScopePermission, CanProduceLineage]
    token_scope = "lineage:write"

    @extend_schema(
        summary="Receive up to 1,000 OpenLineage events; one invalid event rejects the batch",
        parameters=[_PREFER],
        extensions={"x-steward-errors": ["503"]},
        request=inline_serializer("OpenLineageBatch", {"events": serializers.ListField(child=serializers.DictField())}),
        responses={
            200: inline_serializer("IngestBatchResult", {"results": _RESULT.__class__(many=True)}),
            202: inline_serializer("IngestBatchQueued", {"results": _RESULT.__class__(many=True)}),
        },
    )
    def post(self, request: Request) -> Response:
        body = _payload(request, settings.STEWARD_LINEAGE_MAX_EVENT_BYTES * BATCH_BODY_EVENTS)
        code, answer, headers = receive_batch(request.user, body, request.META.get("HTTP_PREFER", ""))
        return Response(answer, status=code, headers=headers)


class InboxView(APIView):
    """What queued ingestion holds: events waiting to be applied, and those that could not be (with why). A
    pipeline's lineage:write token may read it (its own failures)."""

    permission_classes = [IsAuthenticated, TokenScopePermission]
    token_scope = "lineage:write"

    @extend_schema(
        summary="Queued lineage events: how many wait, since when, and those that could not be applied (admins: all; a "
        "producer: its own failures)",
        responses={
            200: inline_serializer(
                "LineageInbox",
                {
                    "pending": serializers.IntegerField(),
                    "failed": serializers.IntegerField(),
                    "oldest_pending_at": serializers.DateTimeField(allow_null=True),
                    "limit": serializers.IntegerField(
                        allow_null=True,
                        help_text="STEWARD_LINEAGE_INBOX_LIMIT: while this many wait, queued calls are answered 503 "
                        "with Retry-After (null: no limit).",
                    ),
                    "failures": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        """Admins see every producer's events; a producer sees the counts and its own failures."""
        if has_role(request.user, Role.ADMIN):
            return Response(asdict(inbox.status()))
        producers.lineage_right_check(request.user)
        return Response(asdict(inbox.status(producer=request.user)))


def _job(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "namespace": job.namespace,
        "name": job.name,
        "latest_completed_at": job.latest_completed_at,
        "edges_ended_at": job.edges_ended_at,
    }


class JobLookupView(APIView):
    @extend_schema(
        summary="Find a job by namespace and name (404 when absent, or when it touches a hidden dataset)",
        parameters=[OpenApiParameter("namespace", str, required=True), OpenApiParameter("name", str, required=True)],
        responses={200: JobDetailSerializer},
        extensions=LOOKS_UP,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        for key in ("namespace", "name"):
            if not params.get(key):
                raise ValidationFailed.one(key, "Required.", "required")
        job = selectors.job_get(user=request.user, namespace=params["namespace"], name=params["name"])
        return Response(JobDetailSerializer({**_job(job), "facets": job.facets, "runs": selectors.job_runs(job)}).data)


class JobDetailView(APIView):
    @extend_schema(
        summary="A job and its latest runs (hidden, as 404, when it touches a dataset the caller may not see)",
        responses={200: JobDetailSerializer},
    )
    def get(self, request: Request, pk: UUID) -> Response:
        job = selectors.job_get(user=request.user, pk=pk)
        return Response(JobDetailSerializer({**_job(job), "facets": job.facets, "runs": selectors.job_runs(job)}).data)

    @extend_schema(summary="End all of a job's current edges (stewards and admins)", responses={200: JobSerializer})
    def delete(self, request: Request, pk: UUID) -> Response:
        return Response(JobSerializer(_job(job_end_edges(actor=request.user, job_id=pk))).data)


class LineageGraphView(APIView):
    @extend_schema(
        summary="Lineage around a dataset: nodes (datasets, jobs, optionally columns) and edges",
        parameters=[
            OpenApiParameter("namespace", str, required=True),
            OpenApiParameter("name", str, required=True),
            OpenApiParameter("direction", str, enum=["upstream", "downstream", "both"]),
            OpenApiParameter("depth", int),
            OpenApiParameter(
                "columns",
                bool,
                description="Add column nodes and column edges; each column edge has `transformation` DIRECT or "
                "INDIRECT (a dataset-level INDIRECT input targets the output's dataset node).",
            ),
            OpenApiParameter("at", str, description="ISO 8601 time with offset: the graph as of then"),
            OpenApiParameter(
                "limit",
                int,
                description="Most datasets to return, nearest first (default STEWARD_LINEAGE_DEFAULT_NODES, at most "
                "STEWARD_LINEAGE_MAX_NODES); `truncated` in the answer says when more were left out.",
            ),
        ],
        responses={200: LineageGraphSerializer},
        extensions=LOOKS_UP,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        for key in ("namespace", "name"):
            if not params.get(key):
                raise ValidationFailed.one(key, "Required.", "required")
        return Response(
            selectors.lineage_graph(
                user=request.user,
                namespace=params["namespace"],
                name=params["name"],
                direction=params.get("direction", "both"),
                depth=parse_int(params.get("depth"), "depth", 3),
                columns=parse_bool(params.get("columns"), "columns"),
                at=parse_time(params.get("at")),
                limit=parse_int(params.get("limit"), "limit", None),
            )
        )


def _declassification(d: Declassification) -> dict[str, Any]:
    return {
        "id": str(d.pk),
        "job": {"id": str(d.job_id), "namespace": d.job.namespace, "name": d.job.name},
        "tags": sorted(t.key for t in d.tags.all()),
        "justification": d.justification,
        "state": d.state,
        "requested_by": d.requested_by.get_username(),
        "requested_at": d.requested_at,
        "decided_by": d.decided_by.get_username() if d.decided_by else None,
        "decided_at": d.decided_at,
        "decision_reason": d.decision_reason,
        "valid_from": d.valid_from,
        "valid_to": d.valid_to,
    }


class DeclassificationInput(serializers.Serializer):
    job = serializers.UUIDField()
    tags = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False, max_length=100)
    justification = serializers.CharField(max_length=5000)


class DecisionInput(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class DeclassificationListView(APIView):
    @extend_schema(
        summary="Declassification requests (newest first) on jobs whose datasets the caller may see, and their own",
        parameters=[OpenApiParameter("state", str, enum=[s.value for s in DeclassificationState])],
        responses={200: DeclassificationListSerializer},
    )
    def get(self, request: Request) -> Response:
        qs = selectors.declassification_list(user=request.user, state=request.query_params.get("state") or None)
        return Response(DeclassificationListSerializer({"results": [_declassification(d) for d in qs[:500]]}).data)

    @extend_schema(
        summary="Ask to block tags across one job's edges",
        request=DeclassificationInput,
        responses={201: DeclassificationSerializer},
    )
    def post(self, request: Request) -> Response:
        data = parse_body(DeclassificationInput, request.data)
        decl = declassify.declassification_request(
            actor=request.user, job_id=data["job"], tag_keys=data["tags"], justification=data["justification"]
        )
        return Response(DeclassificationSerializer(_declassification(decl)).data, status=status.HTTP_201_CREATED)


class DeclassificationActionView(APIView):
    action = ""

    @extend_schema(request=DecisionInput, responses={200: DeclassificationSerializer})
    def post(self, request: Request, pk: str) -> Response:
        reason = parse_body(DecisionInput, request.data).get("reason", "")
        if self.action == "revoke":
            decl = declassify.declassification_revoke(actor=request.user, pk=pk, reason=reason)
        else:
            decl = declassify.declassification_decide(
                actor=request.user, pk=pk, approve=self.action == "approve", reason=reason
            )
        return Response(DeclassificationSerializer(_declassification(decl)).data)


# --- namespace ownership (producers) ------------------------------------------------------------------------


def _assignment(row: NamespaceProducer) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "namespace": row.namespace,
        "producer": row.producer.get_username(),
        "assigned_by": row.assigned_by.get_username() if row.assigned_by else None,
        "created_at": row.created_at,
    }


class NamespaceAssignInput(serializers.Serializer):
    namespace = serializers.CharField(max_length=255)
    producer = serializers.CharField(max_length=150, help_text="Username of the producer (a service account).")


class NamespaceProducerListView(APIView):
    @extend_schema(
        summary="Namespaces and their producers (admins see all; others their own)",
        parameters=[OpenApiParameter("namespace", str)],
        responses={200: NamespaceProducerListSerializer},
    )
    def get(self, request: Request) -> Response:
        qs = selectors.namespace_producers(user=request.user, namespace=request.query_params.get("namespace"))
        return Response(NamespaceProducerListSerializer({"results": [_assignment(r) for r in qs[:1000]]}).data)

    @extend_schema(
        summary="Allow a producer on a namespace (admins): it may run the namespace's jobs and change its datasets",
        request=NamespaceAssignInput,
        responses={201: NamespaceProducerSerializer},
    )
    def post(self, request: Request) -> Response:
        data = parse_body(NamespaceAssignInput, request.data)
        row = producers.namespace_producer_assign(
            actor=request.user, namespace=data["namespace"], username=data["producer"]
        )
        return Response(NamespaceProducerSerializer(_assignment(row)).data, status=status.HTTP_201_CREATED)


class NamespaceProducerDetailView(APIView):
    @extend_schema(summary="Withdraw a producer from a namespace (admins)", responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        producers.namespace_producer_remove(actor=request.user, pk=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
