"""The tag vocabulary endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import services
from catalog.api import serializers as s
from catalog.api.pagination import KeyPagination
from catalog.models import Tag
from steward.api.params import parse_body
from steward.errors import NotFound

__all__ = ["TagViewSet"]


class TagViewSet(viewsets.GenericViewSet):
    """The tag vocabulary. Everyone reads it; stewards, privacy officers and admins change it."""

    serializer_class = s.TagSerializer
    queryset = Tag.objects.all()
    pagination_class = KeyPagination
    lookup_field = "key"
    lookup_value_regex = "[^/]+"

    def _get(self, key: str) -> Tag:
        tag = Tag.objects.filter(key=key).first()
        if tag is None:
            raise NotFound(f"No tag {key!r}.")
        return tag

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.TagSerializer(page, many=True).data)

    def retrieve(self, request: Request, key: str) -> Response:
        return Response(s.TagSerializer(self._get(key)).data)

    @extend_schema(request=s.TagCreateInput, responses={201: s.TagSerializer})
    def create(self, request: Request) -> Response:
        tag = services.tag_create(actor=request.user, **parse_body(s.TagCreateInput, request.data))
        return Response(s.TagSerializer(tag).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TagUpdateInput, responses=s.TagSerializer)
    def partial_update(self, request: Request, key: str) -> Response:
        tag = services.tag_update(actor=request.user, tag=self._get(key), **parse_body(s.TagUpdateInput, request.data))
        return Response(s.TagSerializer(tag).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, key: str) -> Response:
        services.tag_delete(actor=request.user, tag=self._get(key))
        return Response(status=status.HTTP_204_NO_CONTENT)
