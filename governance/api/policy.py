"""The access policy: read the version in effect, replace it (admins), read past versions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import serializers as s
from governance.models import PolicyVersion
from governance.selectors import policy_current
from governance.services.policy import policy_update
from steward.api.pagination import StewardCursorPagination
from steward.errors import NotFound


class PolicyVersionPagination(StewardCursorPagination):
    ordering = "-version"


class PolicyView(APIView):
    """The policy in effect (everyone signed in may read it: requesters need its purposes and limits)."""

    @extend_schema(summary="The access policy in effect", responses=s.PolicySerializer)
    def get(self, request: Request) -> Response:
        return Response(s.PolicySerializer(policy_current()).data)

    @extend_schema(
        summary="Replace the policy with a new version (admins)",
        request=s.PolicyInput,
        responses={200: s.PolicySerializer, 201: s.PolicySerializer},
    )
    def put(self, request: Request) -> Response:
        ser = s.PolicyInput(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        note = data.pop("note", "")
        base_version = data.pop("base_version", None)
        version, created = policy_update(actor=request.user, document=data, note=note, base_version=base_version)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.PolicySerializer(version).data, status=code)


@extend_schema(summary="Past and current policy versions, newest first")
class PolicyVersionListView(ListAPIView):
    """Every stored version, newest first: what applied when (for audits)."""

    serializer_class = s.PolicySerializer
    pagination_class = PolicyVersionPagination
    queryset = PolicyVersion.objects.all()


class PolicyVersionDetailView(APIView):
    @extend_schema(summary="One policy version", responses=s.PolicySerializer)
    def get(self, request: Request, version: int) -> Response:
        found = PolicyVersion.objects.filter(version=version).first()
        if found is None:
            raise NotFound(f"No policy version {version}.")
        return Response(s.PolicySerializer(found).data)
