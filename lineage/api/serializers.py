"""Output serializers of lineage's endpoints: they describe (in docs/openapi.yaml) exactly what the views return.

Refs to datasets and jobs the caller may not see are masked as ``{"id": null, "hidden": true}``: hence the
optional ``namespace``/``name``/``hidden`` keys below.
"""

from __future__ import annotations

from rest_framework import serializers

__all__ = [
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
