"""Output serializers of lineage's endpoints: they describe (in docs/openapi.yaml) exactly what the views return.

Refs to datasets and jobs the caller may not see are masked as ``{"id": null, "hidden": true}``: hence the
optional ``namespace``/``name``/``hidden`` keys below.
"""

from __future__ import annotations

from rest_framework import serializers

__all__ = [
    "DatasetExplainSerializer",
    "DatasetTagsSerializer",
    "DatasetVersionsSerializer",
    "FieldTagsSerializer",
    "JobDetailSerializer",
    "JobSerializer",
    "LineageGraphSerializer",
    "DeclassificationListSerializer",
    "DeclassificationSerializer",
    "NamespaceProducerListSerializer",
    "NamespaceProducerSerializer",
]


# --- namespaces ------------------------------------------------------------------------------------------------


class NamespaceProducerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    namespace = serializers.CharField()
    producer = serializers.CharField(help_text="Username of the producer.")
    assigned_by = serializers.CharField(allow_null=True, help_text="Username of the admin who assigned it.")
    created_at = serializers.DateTimeField()


class NamespaceProducerListSerializer(serializers.Serializer):
    results = NamespaceProducerSerializer(many=True)


# --- declassifications ----------------------------------------------------------------------------------------


class DeclassificationJobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    namespace = serializers.CharField()
    name = serializers.CharField()


class DeclassificationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    job = DeclassificationJobSerializer()
    tags = serializers.ListField(child=serializers.CharField(), help_text="Tag keys, sorted.")
    justification = serializers.CharField()
    state = serializers.CharField()
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField(allow_blank=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_to = serializers.DateTimeField(allow_null=True)


class DeclassificationListSerializer(serializers.Serializer):
    results = DeclassificationSerializer(many=True)


# --- jobs -----------------------------------------------------------------------------------------------------


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    namespace = serializers.CharField()
    name = serializers.CharField()
    latest_completed_at = serializers.DateTimeField(allow_null=True)
    edges_ended_at = serializers.DateTimeField(allow_null=True)


class JobRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    state_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    facets = serializers.DictField(help_text="The run's OpenLineage facets, as stored.")


class JobDetailSerializer(JobSerializer):
    facets = serializers.DictField(help_text="The job's OpenLineage facets, as stored.")
    runs = JobRunSerializer(many=True, help_text="The latest runs (at most 50), newest first.")


# --- graph ----------------------------------------------------------------------------------------------------


class LineageNodeSerializer(serializers.Serializer):
    id = serializers.CharField(
        help_text="`dataset:<id>`, `job:<id>`, `column:<dataset id>:<field>`, or masked "
        "`hidden:<n>` / `job:hidden:<n>`."
    )
    kind = serializers.ChoiceField(choices=["dataset", "job", "column"])
    hidden = serializers.BooleanField(required=False, help_text="Present (true) on masked datasets and jobs.")
    depth = serializers.IntegerField(required=False, help_text="Datasets only: hops from the root.")
    dataset_id = serializers.UUIDField(required=False)
    job_id = serializers.UUIDField(required=False)
    namespace = serializers.CharField(required=False)
    name = serializers.CharField(required=False, help_text="Dataset, job or column name.")
    platform = serializers.CharField(required=False)
    classification = serializers.CharField(required=False)
    dataset = serializers.CharField(required=False, help_text="Columns only: the dataset node's id.")


class LineageEdgeSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # a response key named like a DRF Field attribute
    target = serializers.CharField()
    kind = serializers.ChoiceField(choices=["input", "output", "column"])
    job = serializers.CharField(required=False, help_text="Column edges only: the job node's id.")
    transformation = serializers.ChoiceField(
        choices=["DIRECT", "INDIRECT"], required=False, help_text="Column edges only."
    )


class LineageGraphSerializer(serializers.Serializer):
    root = serializers.CharField()  # type: ignore[assignment]  # a response key named like a DRF Field attribute
    direction = serializers.ChoiceField(choices=["upstream", "downstream", "both"])
    depth = serializers.IntegerField()
    at = serializers.DateTimeField(allow_null=True)
    limit = serializers.IntegerField()
    truncated = serializers.BooleanField()
    nodes = LineageNodeSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)


# --- a dataset's tags, explanations and versions --------------------------------------------------------------


class LineageJobRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="Null when the job is masked.")
    namespace = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    hidden = serializers.BooleanField(required=False)


class LineageDatasetRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="Null when the dataset is masked.")
    namespace = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    hidden = serializers.BooleanField(required=False)
    field = serializers.CharField(allow_null=True)


class LineageViaRefSerializer(LineageDatasetRefSerializer):
    job = LineageJobRefSerializer()


class DirectTagSerializer(serializers.Serializer):
    tag = serializers.CharField()
    field = serializers.CharField(allow_null=True)
    implied_level = serializers.CharField(allow_null=True)


class PropagatedTagSerializer(DirectTagSerializer):
    source = LineageDatasetRefSerializer()  # type: ignore[assignment]  # a response key named like a DRF Field attribute
    via = LineageViaRefSerializer()
    since = serializers.DateTimeField()


class DatasetTagsSerializer(serializers.Serializer):
    dataset = serializers.UUIDField()
    at = serializers.DateTimeField(allow_null=True)
    effective_classification = serializers.CharField()
    direct = DirectTagSerializer(many=True)
    propagated = PropagatedTagSerializer(many=True)


class FieldTagsSerializer(DatasetTagsSerializer):
    field = serializers.CharField()


class ExplainHopSerializer(serializers.Serializer):
    from_ = LineageDatasetRefSerializer()
    job = LineageJobRefSerializer()
    to = LineageDatasetRefSerializer()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class DatasetExplainSerializer(serializers.Serializer):
    tag = serializers.CharField()
    dataset = serializers.UUIDField()
    field = serializers.CharField(allow_null=True)
    direct = serializers.BooleanField()
    at = serializers.DateTimeField(allow_null=True, required=False, help_text="Absent when `direct` is true.")
    source = LineageDatasetRefSerializer(  # type: ignore[assignment]  # a response key named like a DRF Field attribute
        allow_null=True, required=False, help_text="Where the tag was assigned; absent when `direct` is true."
    )
    path = ExplainHopSerializer(many=True, help_text="Hops from the source, in order; empty when `direct` is true.")


class DatasetVersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    run_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    fields = serializers.ListField(child=serializers.CharField(allow_null=True))  # type: ignore[assignment]  # a response key named like a DRF Field attribute


class DatasetVersionsSerializer(serializers.Serializer):
    dataset = serializers.UUIDField()
    results = DatasetVersionSerializer(many=True)
