"""The audit log: filtered reading and chain verification (compliance officers and admins), signed checkpoints."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import serializers as s
from governance.selectors import AUDIT_READERS, audit_list
from governance.services.audit_checkpoints import audit_checkpoint_create, audit_verify
from ledger.models import AuditCheckpoint, AuditEvent
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_time
from steward.errors import PermissionDenied
from steward.identity import has_role


class AuditPagination(StewardCursorPagination):
    ordering = "-seq"


@extend_schema(
    summary="Audit events, newest first (compliance officers and admins)",
    parameters=[
        OpenApiParameter("actor", str, description="Username of who acted (system for background work)"),
        OpenApiParameter("action", str, description="Exact action, or a prefix ending in * (governance.grant.*)"),
        OpenApiParameter("object", str, description="Target id, or type:id (governance.grant:<uuid>)"),
        OpenApiParameter("since", str, description="ISO 8601 time with offset (inclusive)"),
        OpenApiParameter("until", str, description="ISO 8601 time with offset (exclusive)"),
    ],
)
class AuditListView(ListAPIView):
    serializer_class = s.AuditEventSerializer
    pagination_class = AuditPagination
    queryset = AuditEvent.objects.none()

    def get_queryset(self):  # noqa: ANN201
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        params = self.request.query_params
        filters = {
            "actor": params.get("actor"),
            "action": params.get("action"),
            "object": params.get("object"),
            "since": parse_time(params.get("since"), "since"),
            "until": parse_time(params.get("until"), "until"),
        }
        return audit_list(user=self.request.user, filters=filters)


class AuditVerifyView(APIView):
    @extend_schema(
        summary="Recompute the hash chain, compare its end with the head and each signed checkpoint with its event",
        responses=s.AuditVerifySerializer,
    )
    def get(self, request: Request) -> Response:
        if not has_role(request.user, *AUDIT_READERS):
            raise PermissionDenied("Only compliance officers and admins verify the audit log.")
        return Response(s.AuditVerifySerializer(audit_verify()).data)


class AuditCheckpointPagination(StewardCursorPagination):
    ordering = "-seq"


class AuditCheckpointListView(ListAPIView):
    """Signed checkpoints of the audit chain, newest first.

    Any signed-in user may read them (they hold sequence numbers, hashes and times, no metadata), so that
    outside parties can keep copies; compliance officers and admins may make one now (beat makes one every
    ``STEWARD_AUDIT_CHECKPOINT_MINUTES``).
    """

    serializer_class = s.AuditCheckpointSerializer
    pagination_class = AuditCheckpointPagination
    queryset = AuditCheckpoint.objects.all()

    @extend_schema(summary="Signed audit checkpoints, newest first (any signed-in user)")
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Sign a checkpoint of the chain's last event now (compliance officers and admins)",
        request=None,
        responses={201: s.AuditCheckpointSerializer, 204: None},
    )
    def post(self, request: Request) -> Response:
        if not has_role(request.user, *AUDIT_READERS):
            raise PermissionDenied("Only compliance officers and admins make audit checkpoints.")
        checkpoint = audit_checkpoint_create()
        if checkpoint is None:
            return Response(status=204)
        return Response(s.AuditCheckpointSerializer(checkpoint).data, status=201)
