"""Identity endpoints: who am I, and my personal API tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from steward.api.pagination import StewardCursorPagination
from steward.api.params import as_uuid
from steward.errors import NotFound
from steward.identity import authenticated_user, roles_of


class MeView(APIView):
    """The caller's identity and roles."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request: Request) -> Response:
        user = authenticated_user(request.user)
        return Response(
            {
                "id": user.pk,
                "username": user.username,
                "email": user.email,
                "roles": sorted(roles_of(user)),
                "groups": sorted(user.groups.values_list("name", flat=True)),
            }
        )


class ApiTokenViewSet(viewsets.GenericViewSet):
    """Your personal API tokens. The secret is returned once, at creation; only its digest is stored."""

    serializer_class = s.ApiTokenSerializer
    pagination_class = StewardCursorPagination
    lookup_value_regex = "[^/]+"

    queryset = ApiToken.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=authenticated_user(self.request.user))

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.ApiTokenSerializer(page, many=True).data)

    @extend_schema(request=s.ApiTokenInput, responses={201: s.ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        ser = s.ApiTokenInput(data=request.data)
        ser.is_valid(raise_exception=True)
        token, secret = token_create(actor=request.user, user=request.user, **ser.validated_data)
        data = s.ApiTokenSerializer(token).data
        data["token"] = secret
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        """Revoke a token (it stops working at once)."""
        token = self.get_queryset().filter(pk=as_uuid(pk, "token")).first()
        if token is None:
            raise NotFound("No such token.")
        token_revoke(actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
