"""Catalog API shapes: output serializers, and input serializers that document (and check) request bodies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Dataset, MLModel, ModelVersion, SchemaField, Tag
from catalog.models.ml import ModelStage
from steward.api.serializers import StrictSerializer


def _owners(obj: Any) -> list[dict[str, str]]:
    return [{"type": "user", "name": u.username} for u in obj.owner_users.all()] + [
        {"type": "group", "name": g.name} for g in obj.owner_groups.all()
    ]


class OwnerSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["user", "group"])
    name = serializers.CharField()


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["key", "description", "implied_level", "propagates", "created_at"]


class TagCreateInput(StrictSerializer):
    key = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    implied_level = serializers.CharField(required=False, allow_blank=True, max_length=16, default="")
    propagates = serializers.BooleanField(required=False, default=True)


class TagUpdateInput(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    implied_level = serializers.CharField(required=False, allow_blank=True, max_length=16)
    propagates = serializers.BooleanField(required=False)


class SchemaFieldSerializer(serializers.ModelSerializer):
    ordinal = serializers.IntegerField(min_value=0, read_only=True)
    tags = serializers.SerializerMethodField()

    class Meta:
        model = SchemaField
        fields = ["name", "type", "ordinal", "description", "classification", "tags"]

    def get_tags(self, obj: SchemaField) -> list[str]:
        by_field = self.context.get("field_tags", {})
        return sorted(by_field.get(obj.pk, []))


class DatasetSerializer(serializers.ModelSerializer):
    """A dataset as the API shows it. ``fields`` only on the detail view."""

    owners = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "namespace",
            "name",
            "platform",
            "description",
            "classification",
            "effective_classification",
            "owners",
            "tags",
            "properties",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OwnerSerializer(many=True))
    def get_owners(self, obj: Dataset) -> list[dict[str, str]]:
        return _owners(obj)

    def get_tags(self, obj: Dataset) -> list[str]:
        return sorted(a.tag.key for a in obj.tag_assignments.all() if a.field_id is None)


class DatasetDetailSerializer(DatasetSerializer):
    fields = serializers.SerializerMethodField(method_name="get_schema_fields")

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "fields"]

    @extend_schema_field(SchemaFieldSerializer(many=True))
    def get_schema_fields(self, obj: Dataset) -> list[dict[str, Any]]:
        field_tags: dict[int, list[str]] = {}
        for a in obj.tag_assignments.all():
            if a.field_id is not None:
                field_tags.setdefault(a.field_id, []).append(a.tag.key)
        return SchemaFieldSerializer(obj.fields.all(), many=True, context={"field_tags": field_tags}).data


# The input serializers below document request bodies in the OpenAPI schema; the service layer parses
# the same bodies with ``catalog.validation`` (fast enough for 10,000 datasets per call).
class FieldInput(StrictSerializer):
    name = serializers.CharField(max_length=255)
    type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    classification = serializers.CharField(required=False, allow_blank=True, max_length=16)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class DatasetInput(StrictSerializer):
    namespace = serializers.CharField(max_length=255, help_text="OpenLineage namespace, e.g. postgres://db:5432")
    name = serializers.CharField(max_length=512, help_text="OpenLineage name, e.g. sales.public.orders")
    description = serializers.CharField(required=False, allow_blank=True)
    classification = serializers.CharField(required=False, allow_blank=True, max_length=16)
    properties = serializers.DictField(required=False)
    fields = FieldInput(many=True, required=False)
    owners = serializers.ListField(
        child=serializers.CharField(), required=False, help_text='"alice" or "group:data-eng"'
    )
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class DatasetBulkInput(StrictSerializer):
    datasets = DatasetInput(many=True)


class DatasetBulkResult(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.UUIDField())


class TagAssignInput(StrictSerializer):
    key = serializers.CharField(max_length=100)
    field = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)


class ClassifyInput(StrictSerializer):
    level = serializers.CharField(max_length=16, allow_null=True, allow_blank=True)
    field = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.UUIDField(source="model_id", read_only=True)
    training_run = serializers.UUIDField(source="training_run_id", read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "description",
            "artifact_uri",
            "artifact_digest",
            "image_digest",
            "code_commit",
            "framework",
            "parameters",
            "metrics",
            "stage",
            "training_run",
            "inherited_tags",
            "effective_classification",
            "created_at",
        ]


class MLModelSerializer(serializers.ModelSerializer):
    owners = serializers.SerializerMethodField()
    tags = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)

    class Meta:
        model = MLModel
        fields = [
            "id",
            "name",
            "description",
            "classification",
            "effective_classification",
            "tags",
            "owners",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OwnerSerializer(many=True))
    def get_owners(self, obj: MLModel) -> list[dict[str, str]]:
        return _owners(obj)


class MLModelInput(StrictSerializer):
    name = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$", max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    classification = serializers.CharField(required=False, allow_blank=True, max_length=16, default="")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    owners = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, default=None)


class MLModelUpdateInput(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    classification = serializers.CharField(required=False, allow_blank=True, max_length=16)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    owners = serializers.ListField(child=serializers.CharField(), required=False)


class ModelVersionInput(StrictSerializer):
    version = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$", max_length=64)
    artifact_uri = serializers.CharField(max_length=1024)
    artifact_digest = serializers.RegexField(
        r"^(sha256:[0-9a-f]{64}|)$", required=False, allow_blank=True, max_length=100
    )
    image_digest = serializers.RegexField(r"^(sha256:[0-9a-f]{64}|)$", required=False, allow_blank=True, max_length=100)
    code_commit = serializers.RegexField(r"^([0-9a-f]{7,64}|)$", required=False, allow_blank=True, max_length=64)
    framework = serializers.CharField(max_length=64, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(required=False)
    metrics = serializers.DictField(required=False)
    stage = serializers.ChoiceField(choices=ModelStage.choices, required=False)
    training_run = serializers.UUIDField(
        required=False, help_text="OpenLineage runId of the training run: the version inherits its inputs' tags."
    )


class ModelVersionUpdateInput(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    metrics = serializers.DictField(required=False)
    stage = serializers.ChoiceField(choices=ModelStage.choices, required=False)


class ClassificationLevelSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    hides_metadata = serializers.BooleanField()


class SearchHitSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.UUIDField()
    name = serializers.CharField()
    qualified_name = serializers.CharField()
    namespace = serializers.CharField()
    platform = serializers.CharField()
    description = serializers.CharField()
    classification = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    score = serializers.FloatField()


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class SearchResultsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Matches; a lower bound when total_is_exact is false.")
    total_is_exact = serializers.BooleanField(
        help_text="False when more matched than the backend counts exactly; total and facet counts are then "
        "counted over the first `total` matches."
    )
    results = SearchHitSerializer(many=True)
    facets = serializers.DictField(child=FacetValueSerializer(many=True))


class SearchQueryInput(StrictSerializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    kind = serializers.ListField(child=serializers.ChoiceField(choices=["dataset", "model"]), required=False)
    platform = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    tag = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    classification = serializers.ListField(child=serializers.CharField(max_length=16), required=False)
    owner = serializers.ListField(child=serializers.CharField(max_length=160), required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10_000, default=0)


class SuggestionSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.UUIDField()
    name = serializers.CharField()
    qualified_name = serializers.CharField()
