"""Catalog REST endpoints. Views parse input, call one service or selector, and shape output."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.api import serializers as s
from catalog.classification import levels
from catalog.models import Tag
from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from catalog.validation import ProblemCollector, parse_dataset
from governance.identity import viewer_for
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_body, parse_time
from steward.api.schema import LOOKS_UP
from steward.errors import NotFound, ValidationFailed


class NamePagination(StewardCursorPagination):
    ordering = ("name", "id")


class NewestFirstPagination(StewardCursorPagination):
    ordering = ("-created_at", "-id")


class KeyPagination(StewardCursorPagination):
    ordering = ("key",)


def _body_dict(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed.one("body", "The request body must be a JSON object.", "invalid_type")
    return request.data


DATASET_FILTERS = [
    OpenApiParameter("namespace", str),
    OpenApiParameter("platform", str),
    OpenApiParameter("classification", str),
    OpenApiParameter("tag", str),
]


class DatasetViewSet(viewsets.GenericViewSet):
    """Datasets: list, read, register, change, delete, look up by name, bulk upsert, tag and classify."""

    serializer_class = s.DatasetSerializer
    pagination_class = NamePagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):  # noqa: ANN201
        params = self.request.query_params
        return selectors.dataset_list(
            user=self.request.user,
            filters={key: params.get(key) for key in ("namespace", "platform", "classification", "tag")},
        )

    def _get(self, pk: str):  # noqa: ANN202
        return selectors.dataset_get(user=self.request.user, pk=pk)

    @extend_schema(parameters=DATASET_FILTERS)
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.DatasetSerializer(page, many=True).data)

    @extend_schema(responses=s.DatasetDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.DatasetDetailSerializer(self._get(pk)).data)

    @extend_schema(request=s.DatasetInput, responses={201: s.DatasetDetailSerializer})
    def create(self, request: Request) -> Response:
        problems = ProblemCollector()
        spec = parse_dataset(_body_dict(request), "", problems)
        problems.raise_if_any()
        dataset = services.dataset_create(actor=request.user, spec=spec)
        fresh = selectors.dataset_get(user=request.user, pk=dataset.pk)
        return Response(s.DatasetDetailSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetInput(partial=True), responses=s.DatasetDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        dataset = self._get(pk)
        problems = ProblemCollector()
        spec = parse_dataset(_body_dict(request), "", problems, partial=True)
        problems.raise_if_any()
        services.dataset_update(actor=request.user, dataset=dataset, spec=spec)
        return Response(s.DatasetDetailSerializer(self._get(pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.dataset_delete(actor=request.user, dataset=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("namespace", str, required=True), OpenApiParameter("name", str, required=True)],
        responses=s.DatasetDetailSerializer,
        extensions=LOOKS_UP,
    )
    @action(detail=False, methods=["get"])
    def lookup(self, request: Request) -> Response:
        """Find a dataset by its OpenLineage identity."""
        namespace = request.query_params.get("namespace", "")
        name = request.query_params.get("name", "")
        missing = [k for k, v in (("namespace", namespace), ("name", name)) if not v]
        if missing:
            raise ValidationError({k: ["This query parameter is required."] for k in missing})
        dataset = selectors.dataset_lookup(user=request.user, namespace=namespace, name=name)
        return Response(s.DatasetDetailSerializer(dataset).data)

    @extend_schema(request=s.DatasetBulkInput, responses=s.DatasetBulkResult)
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """Create or update up to 10,000 datasets (with schemas) atomically; one bad item rejects all."""
        body = _body_dict(request)
        problems = ProblemCollector()
        unknown = sorted(set(body) - {"datasets"})
        for key in unknown:
            problems.add(key, "Unknown field.", "unknown_field")
        items = body.get("datasets")
        if not isinstance(items, list):
            problems.add("datasets", "Must be a list of datasets.", "required" if items is None else "invalid_type")
            problems.raise_if_any()
        specs = [parse_dataset(item, f"datasets[{i}]", problems) for i, item in enumerate(items)]
        problems.raise_if_any()
        result = services.dataset_bulk_upsert(actor=request.user, specs=specs)  # type: ignore[arg-type]
        return Response(
            {
                "created": len(result.created),
                "updated": len(result.updated),
                "unchanged": len(result.unchanged),
                "ids": result.ids,
            }
        )

    @extend_schema(methods=["GET"], parameters=[OpenApiParameter("at", str)], responses={200: dict})
    @extend_schema(methods=["POST"], request=s.TagAssignInput, responses={201: s.DatasetDetailSerializer})
    @action(detail=True, methods=["get", "post"], url_path="tags")
    def tags(self, request: Request, pk: str) -> Response:
        """GET: direct and propagated tags (``?at=`` for a past time). POST: tag the dataset, or its ``field``."""
        if request.method == "GET":
            from lineage.selectors import dataset_tags

            return Response(dataset_tags(user=request.user, pk=pk, at=parse_time(request.query_params.get("at"))))
        data = parse_body(s.TagAssignInput, request.data)
        services.dataset_tag_add(
            actor=request.user, dataset=self._get(pk), key=data["key"], field_name=data.get("field") or None
        )
        return Response(s.DatasetDetailSerializer(self._get(pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, required=True),
            OpenApiParameter("field", str),
            OpenApiParameter("at", str),
        ],
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def explain(self, request: Request, pk: str) -> Response:
        """Why the dataset (or ``?field=``) carries ``?tag=``: one path from a direct assignment."""
        from lineage.selectors import dataset_explain

        params = request.query_params
        return Response(
            dataset_explain(
                user=request.user,
                pk=pk,
                tag=params.get("tag", ""),
                field=params.get("field") or None,
                at=parse_time(params.get("at")),
            )
        )

    @extend_schema(
        parameters=[OpenApiParameter("tag", str, required=True), OpenApiParameter("at", str)], responses={200: dict}
    )
    @action(detail=True, methods=["get"], url_path=r"fields/(?P<field>[^/]+)/explain")
    def field_explain(self, request: Request, pk: str, field: str) -> Response:
        """Why a column carries ``?tag=``."""
        from lineage.selectors import dataset_explain

        params = request.query_params
        return Response(
            dataset_explain(
                user=request.user, pk=pk, tag=params.get("tag", ""), field=field, at=parse_time(params.get("at"))
            )
        )

    @extend_schema(parameters=[OpenApiParameter("at", str)], responses={200: dict})
    @action(detail=True, methods=["get"], url_path=r"fields/(?P<field>[^/]+)/tags")
    def field_tags(self, request: Request, pk: str, field: str) -> Response:
        """A column's direct and propagated tags."""
        from lineage.selectors import dataset_tags

        data = dataset_tags(user=request.user, pk=pk, at=parse_time(request.query_params.get("at")))
        if not selectors.dataset_get(user=request.user, pk=pk).fields.filter(name=field).exists():
            raise NotFound(f"No field {field!r}.")
        data["field"] = field
        data["direct"] = [t for t in data["direct"] if t["field"] == field]
        data["propagated"] = [t for t in data["propagated"] if t["field"] == field]
        return Response(data)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        """The dataset's versions from OpenLineage ``version`` facets (or the writing run's id), newest first."""
        from lineage.selectors import dataset_versions

        return Response(dataset_versions(user=request.user, pk=pk))

    @extend_schema(parameters=[OpenApiParameter("field", str)], responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<key>[^/]+)")
    def untag(self, request: Request, pk: str, key: str) -> Response:
        """Remove a direct tag from the dataset, or from ``?field=``."""
        services.dataset_tag_remove(
            actor=request.user, dataset=self._get(pk), key=key, field_name=request.query_params.get("field") or None
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ClassifyInput, responses=s.DatasetDetailSerializer)
    @action(detail=True, methods=["put"])
    def classification(self, request: Request, pk: str) -> Response:
        """Set (or clear with ``null``) the direct classification of the dataset or one of its fields."""
        data = parse_body(s.ClassifyInput, request.data)
        services.dataset_classify(
            actor=request.user,
            dataset=self._get(pk),
            level=data.get("level") or None,
            field_name=data.get("field") or None,
        )
        return Response(s.DatasetDetailSerializer(self._get(pk)).data)


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


class MLModelViewSet(viewsets.GenericViewSet):
    """Registered ML models and their versions."""

    serializer_class = s.MLModelSerializer
    pagination_class = NamePagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):  # noqa: ANN201
        return selectors.model_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.MLModelSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.MLModelSerializer(selectors.model_get(user=request.user, pk=pk)).data)

    @extend_schema(request=s.MLModelInput, responses={201: s.MLModelSerializer})
    def create(self, request: Request) -> Response:
        model = services.model_create(actor=request.user, **parse_body(s.MLModelInput, request.data))
        return Response(
            s.MLModelSerializer(selectors.model_get(user=request.user, pk=model.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=s.MLModelUpdateInput, responses=s.MLModelSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        model = selectors.model_get(user=request.user, pk=pk)
        services.model_update(actor=request.user, model=model, **parse_body(s.MLModelUpdateInput, request.data))
        return Response(s.MLModelSerializer(selectors.model_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.model_delete(actor=request.user, model=selectors.model_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["get"], responses=s.ModelVersionSerializer(many=True))
    @extend_schema(methods=["post"], request=s.ModelVersionInput, responses={201: s.ModelVersionSerializer})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, pk: str) -> Response:
        """List a model's versions (newest first), or register a new one."""
        model = selectors.model_get(user=request.user, pk=pk)
        if request.method == "GET":
            versions = model.versions.select_related("trained_by", "created_by")
            paginator = NewestFirstPagination()
            page = paginator.paginate_queryset(versions, request, view=self)
            return paginator.get_paginated_response(s.ModelVersionSerializer(page, many=True).data)
        data = parse_body(s.ModelVersionInput, request.data)
        if "training_run" in data:
            data["training_run_id"] = data.pop("training_run")
        mv = services.model_version_create(actor=request.user, model=model, **data)
        return Response(s.ModelVersionSerializer(mv).data, status=status.HTTP_201_CREATED)


class ModelVersionViewSet(viewsets.GenericViewSet):
    serializer_class = s.ModelVersionSerializer
    lookup_value_regex = "[^/]+"

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ModelVersionSerializer(selectors.model_version_get(user=request.user, pk=pk)).data)

    @extend_schema(request=s.ModelVersionUpdateInput, responses=s.ModelVersionSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        mv = selectors.model_version_get(user=request.user, pk=pk)
        mv = services.model_version_update(
            actor=request.user, version=mv, **parse_body(s.ModelVersionUpdateInput, request.data)
        )
        return Response(s.ModelVersionSerializer(mv).data)


class ClassificationLevelsView(APIView):
    """The configured classification levels, lowest first."""

    @extend_schema(responses=s.ClassificationLevelSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            [
                {"code": lv.code, "name": lv.name, "rank": lv.rank, "hides_metadata": lv.hides_metadata}
                for lv in levels()
            ]
        )


def _search_query(request: Request) -> SearchQuery:
    params = request.query_params
    raw: dict[str, Any] = {}
    for key in params:
        if key in ("kind", "platform", "tag", "classification", "owner"):
            raw[key] = params.getlist(key)
        else:
            raw[key] = params.get(key)
    data = parse_body(s.SearchQueryInput, raw)
    return SearchQuery(
        q=data.get("q", ""),
        kinds=data.get("kind", []),
        platforms=data.get("platform", []),
        tags=data.get("tag", []),
        classifications=data.get("classification", []),
        owners=data.get("owner", []),
        limit=data["limit"],
        offset=data["offset"],
    )


class SearchView(APIView):
    """Ranked search over datasets and models with facet counts; hidden assets never appear."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str),
            OpenApiParameter("kind", str, many=True),
            OpenApiParameter("platform", str, many=True),
            OpenApiParameter("tag", str, many=True),
            OpenApiParameter("classification", str, many=True),
            OpenApiParameter("owner", str, many=True, description="user:alice or group:data-eng"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses=s.SearchResultsSerializer,
    )
    def get(self, request: Request) -> Response:
        results = get_backend().search(_search_query(request), viewer_for(request.user))
        return Response(
            {
                "total": results.total,
                "total_is_exact": results.exact,
                "results": s.SearchHitSerializer(results.hits, many=True).data,
                "facets": {
                    name: [{"value": v, "count": n} for v, n in values] for name, values in results.facets.items()
                },
            }
        )


class SuggestView(APIView):
    """Typeahead over asset names."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("limit", int)],
        responses=inline_serializer("Suggestions", {"results": s.SuggestionSerializer(many=True)}),
    )
    def get(self, request: Request) -> Response:
        q = request.query_params.get("q", "")
        if len(q) > 200:
            raise ValidationFailed.one("q", "At most 200 characters.", "max_length")
        try:
            limit = min(max(int(request.query_params.get("limit", 10)), 1), 50)
        except ValueError:
            raise ValidationFailed.one("limit", "Must be an integer.", "invalid") from None
        found = get_backend().suggest(q, viewer_for(request.user), limit=limit)
        return Response({"results": s.SuggestionSerializer(found, many=True).data})


__all__ = [
    "ClassificationLevelsView",
    "DatasetViewSet",
    "MLModelViewSet",
    "ModelVersionViewSet",
    "SearchView",
    "SuggestView",
    "TagViewSet",
]
