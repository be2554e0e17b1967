"""Access requests and grants: ask, approve, deny, withdraw; list, revoke, ask for re-approval."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance import selectors
from governance.api import serializers as s
from governance.choices import GrantState, RequestState
from governance.models import AccessRequest, Grant
from governance.services import access_requests as requests_service
from governance.services.enforcement import grant_credentials_issue, grant_token_issue
from governance.services.grants import grant_revoke
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_body, parse_choice
from steward.durations import parse_duration

# Secrets in an answer: no cache (browser, proxy) may keep them.
NO_STORE = {"Cache-Control": "no-store"}


class NewestFirst(StewardCursorPagination):
    ordering = ("-created_at", "-id")


class AccessRequestViewSet(viewsets.GenericViewSet):
    """Access requests. ``?awaiting=me`` lists the requests waiting for your approval."""

    serializer_class = s.AccessRequestSerializer
    pagination_class = NewestFirst
    queryset = AccessRequest.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessRequest.objects.none()
        params = self.request.query_params
        awaiting = parse_choice(params.get("awaiting"), "awaiting", ["me"])
        state = parse_choice(params.get("state"), "state", RequestState.values)
        return selectors.access_request_list(user=self.request.user, awaiting_me=awaiting == "me", state=state)

    def _out(self, pk: Any, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            s.AccessRequestSerializer(selectors.access_request_get(user=self.request.user, pk=pk)).data, code
        )

    @extend_schema(
        summary="Your access requests (all of them for compliance officers and admins), or your approval queue",
        parameters=[
            OpenApiParameter("awaiting", str, enum=["me"], description="me: requests waiting for your approval"),
            OpenApiParameter("state", str, enum=RequestState.values),
        ],
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.AccessRequestSerializer(page, many=True).data)

    @extend_schema(
        summary="Ask to read datasets", request=s.AccessRequestInput, responses={201: s.AccessRequestSerializer}
    )
    def create(self, request: Request) -> Response:
        data = parse_body(s.AccessRequestInput, request.data)
        workspace = data.get("workspace") or {}
        created = requests_service.access_request_create(
            actor=request.user,
            datasets=data["datasets"],
            purpose=data["purpose"],
            justification=data["justification"],
            duration=parse_duration(data["duration"], "duration"),
            workspace_id=workspace.get("id"),
            workspace_label=workspace.get("label", ""),
        )
        return self._out(created.pk, status.HTTP_201_CREATED)

    @extend_schema(summary="One access request (yours, one you approve, or any for compliance and admins)")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._out(pk)

    @extend_schema(summary="Give your approval", request=s.ApproveInput, responses=s.AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        data = parse_body(s.ApproveInput, request.data)
        found = selectors.access_request_get(user=request.user, pk=pk)
        requests_service.access_request_approve(
            actor=request.user, request=found, role=data.get("role"), comment=data.get("comment", "")
        )
        return self._out(found.pk)

    @extend_schema(
        summary="Deny the request, with a reason", request=s.ReasonInput, responses=s.AccessRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def deny(self, request: Request, pk: str) -> Response:
        data = parse_body(s.ReasonInput, request.data)
        found = selectors.access_request_get(user=request.user, pk=pk)
        requests_service.access_request_deny(actor=request.user, request=found, reason=data["reason"])
        return self._out(found.pk)

    @extend_schema(
        summary="Withdraw your pending request", request=s.OptionalReasonInput, responses=s.AccessRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        data = parse_body(s.OptionalReasonInput, request.data)
        found = selectors.access_request_get(user=request.user, pk=pk)
        requests_service.access_request_withdraw(actor=request.user, request=found, reason=data.get("reason", ""))
        return self._out(found.pk)


class GrantViewSet(viewsets.GenericViewSet):
    """Grants: yours and those on datasets you own; all for stewards, privacy and compliance officers, admins."""

    serializer_class = s.GrantSerializer
    pagination_class = NewestFirst
    queryset = Grant.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Grant.objects.none()
        params = self.request.query_params
        filters = {
            "dataset": params.get("dataset"),
            "user": params.get("user"),
            "state": parse_choice(params.get("state"), "state", GrantState.values),
        }
        return selectors.grant_list(user=self.request.user, filters=filters)

    @extend_schema(
        summary="Grants you may see",
        parameters=[
            OpenApiParameter("dataset", str, description="A dataset id"),
            OpenApiParameter("user", str, description="A username"),
            OpenApiParameter("state", str, enum=GrantState.values, description="As last recorded"),
        ],
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.GrantSerializer(page, many=True).data)

    @extend_schema(summary="One grant")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.GrantSerializer(selectors.grant_get(user=request.user, pk=pk)).data)

    @extend_schema(summary="Revoke the grant now, with a reason", request=s.ReasonInput, responses=s.GrantSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        data = parse_body(s.ReasonInput, request.data)
        grant = grant_revoke(
            actor=request.user, grant=selectors.grant_get(user=request.user, pk=pk), reason=data["reason"]
        )
        return Response(s.GrantSerializer(selectors.grant_get(user=request.user, pk=grant.pk)).data)

    @extend_schema(
        summary="Ask for a suspended grant to be re-approved under its dataset's new level (the holder)",
        request=s.ReapproveInput,
        responses={201: s.AccessRequestSerializer},
    )
    @action(detail=True, methods=["post"])
    def reapprove(self, request: Request, pk: str) -> Response:
        data = parse_body(s.ReapproveInput, request.data)
        grant = selectors.grant_get(user=request.user, pk=pk)
        created = requests_service.grant_reapproval_request(
            actor=request.user, grant=grant, justification=data.get("justification", "")
        )
        out = s.AccessRequestSerializer(selectors.access_request_get(user=request.user, pk=created.pk)).data
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="A login to the grant's table in its managed database, with a new password shown once (the holder)",
        request=None,
        responses={200: s.GrantCredentialsSerializer},
    )
    @action(detail=True, methods=["post"])
    def credentials(self, request: Request, pk: str) -> Response:
        creds = grant_credentials_issue(actor=request.user, grant_id=pk)
        body = {
            "grant_id": creds.grant_id,
            "host": creds.host,
            "port": creds.port,
            "database": creds.database,
            "user": creds.user,
            "password": creds.password,
            "valid_until": creds.valid_until,
        }
        return Response(s.GrantCredentialsSerializer(body).data, headers=NO_STORE)

    @extend_schema(
        summary="A short-lived signed token for the grant, verifiable offline with the JWKS (the holder, services)",
        request=s.GrantTokenInput,
        responses={200: s.GrantTokenSerializer},
    )
    @action(detail=True, methods=["post"])
    def token(self, request: Request, pk: str) -> Response:
        data = parse_body(s.GrantTokenInput, request.data)
        seconds = data.get("lifetime_seconds")
        token, expires_at = grant_token_issue(
            actor=request.user, grant_id=pk, lifetime=timedelta(seconds=seconds) if seconds else None
        )
        body = {"token": token, "expires_at": expires_at, "jwks_url": request.build_absolute_uri(reverse("jwks"))}
        return Response(s.GrantTokenSerializer(body).data, headers=NO_STORE)
