"""Catalog API shapes: output serializers, and input serializers that document (and check) request bodies."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Dataset, Deployment, MLModel, ModelVersion, ResultRecord, SchemaField, Tag
from catalog.models.ml import ModelStage
from steward.api.serializers import AwareDateTimeField, StrictSerializer


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


class DatasetAliasSerializer(serializers.Serializer):
    namespace = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField(allow_blank=True)


class ProducerFactsSerializer(serializers.Serializer):
    """What lineage producers last said through OpenLineage facets (docs/lineage.md "Facets that carry
    meaning"). Each key is present only once a producer sent its facet; where a person set the attribute, the
    dataset's own value (``description``, ``owners``...) is the person's and this one is the producer's."""

    description = serializers.CharField(required=False, help_text="From the documentation facet.")
    platform = serializers.CharField(required=False, help_text="From the dataSource facet.")
    owners = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="ownership owners that exist (user:x, group:y)."
    )
    unresolved_owners = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="ownership names matching no user or group."
    )
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    field_tags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    unknown_tags = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Tags not in Steward's vocabulary (or on a field the dataset lacks), as key or field:key; "
        "not created.",
    )
    aliases = DatasetAliasSerializer(many=True, required=False, help_text="From the symlinks facet.")
    by = serializers.CharField(required=False, help_text="The producer account that said it last.")
    sources = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        help_text="What each crawled source (docs/sources.md) said last, by source id: name, source_kind, kind, "
        "description, columns (name -> nullable, description), properties (row estimate, keys, view definition).",
    )


class DatasetSerializer(serializers.ModelSerializer):
    """A dataset as the API shows it. ``fields`` only on the detail view."""

    owners = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    producer = ProducerFactsSerializer(source="producer_facts", read_only=True)

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
            "producer",
            "removed_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OwnerSerializer(many=True))
    def get_owners(self, obj: Dataset) -> list[dict[str, str]]:
        return _owners(obj)

    def get_tags(self, obj: Dataset) -> list[str]:
        return sorted(a.tag.key for a in obj.tag_assignments.all() if a.field_id is None)


class DatasetDetailSerializer(DatasetSerializer):
    # A field named ``fields``: DRF's metaclass moves declared fields aside, so it does not shadow the
    # serializer's ``fields`` property at runtime; the stubs only see the class attribute.
    fields = serializers.SerializerMethodField(method_name="get_schema_fields")  # type: ignore[assignment]

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "fields"]

    @extend_schema_field(SchemaFieldSerializer(many=True))
    def get_schema_fields(self, obj: Dataset) -> list[dict[str, Any]]:
        field_tags: dict[int, list[str]] = {}
        for a in obj.tag_assignments.all():
            if a.field_id is not None:
                field_tags.setdefault(a.field_id, []).append(a.tag.key)
        return list(SchemaFieldSerializer(obj.fields.all(), many=True, context={"field_tags": field_tags}).data)


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
    fields = FieldInput(many=True, required=False)  # type: ignore[assignment]  # a declared field, as above
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
    trained_by = serializers.SerializerMethodField(
        help_text="Username whose access the training run used (defaults to who registered the version)."
    )

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
            "trained_by",
            "created_at",
        ]

    def get_trained_by(self, obj: ModelVersion) -> str | None:
        user = obj.trained_by or obj.created_by
        return user.username if user else None


class MLModelSerializer(serializers.ModelSerializer):
    owners = serializers.SerializerMethodField()
    tags: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)

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
    trained_by = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="Username whose access the training run used (default: you).",
    )


class ModelVersionUpdateInput(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    metrics = serializers.DictField(required=False)
    stage = serializers.ChoiceField(choices=ModelStage.choices, required=False)


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.UUIDField(source="model_version.model_id", read_only=True)
    model_name = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.CharField(source="model_version.version", read_only=True)
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    serving = serializers.SerializerMethodField(help_text="True while the deployment has no end.")
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "model",
            "model_name",
            "model_version",
            "version",
            "environment",
            "endpoint",
            "deployed_from",
            "deployed_to",
            "serving",
            "created_at",
            "created_by",
        ]

    def get_serving(self, obj: Deployment) -> bool:
        return obj.deployed_to is None


class DeploymentInput(StrictSerializer):
    model_version = serializers.UUIDField()
    environment = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", max_length=64, help_text="e.g. prod, staging, eu-prod"
    )
    deployed_from = AwareDateTimeField(
        required=False, help_text="ISO 8601 with offset; default now. Never in the future."
    )
    endpoint = serializers.CharField(max_length=1024, required=False, allow_blank=True, default="")


class DeploymentEndInput(StrictSerializer):
    at = AwareDateTimeField(required=False, help_text="ISO 8601 with offset; default now. Never in the future.")


class ResultRecordSerializer(serializers.ModelSerializer):
    model = serializers.UUIDField(source="model_id", read_only=True)
    deployment = serializers.UUIDField(source="deployment_id", read_only=True, allow_null=True)
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    version = serializers.CharField(source="model_version.version", read_only=True)
    environment = serializers.CharField(source="deployment.environment", read_only=True, allow_null=True)
    received_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ResultRecord
        fields = [
            "id",
            "model",
            "deployment",
            "model_version",
            "version",
            "environment",
            "produced_at",
            "input_ref",
            "output_digest",
            "received_at",
            "received_by",
        ]


# Documents the body only: results_ingest parses records itself (fast enough for 10,000 per call).
class ResultRecordInput(StrictSerializer):
    id = serializers.UUIDField(required=False, help_text="Default: a UUIDv5 of the content (re-sending is a no-op).")
    model = serializers.CharField(required=False, help_text="The model's id or name (or give deployment).")
    deployment = serializers.UUIDField(required=False, help_text="The deployment that produced it (or give model).")
    environment = serializers.CharField(
        required=False, help_text="Chooses among deployments of the model serving at produced_at."
    )
    produced_at = serializers.DateTimeField(help_text="ISO 8601 with offset, not in the future.")
    input_ref = serializers.CharField(max_length=1024, help_text="A reference to the input (not the data).")
    output_digest = serializers.CharField(max_length=100, help_text="A digest of the output, e.g. sha256:...")


class ResultBulkInput(StrictSerializer):
    records = ResultRecordInput(many=True, help_text="At most 10,000; all or nothing.")


class ResultIngestSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    already_present = serializers.IntegerField(help_text="Re-sent records (and repeats within the call).")
    ids = serializers.ListField(child=serializers.UUIDField(), help_text="In input order.")


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
    removed = serializers.BooleanField(
        help_text="A dataset gone from its source (removed_at set); only with include_removed=true."
    )


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
    include_removed = serializers.BooleanField(required=False, default=False)


class SuggestionSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.UUIDField()
    name = serializers.CharField()
    qualified_name = serializers.CharField()
