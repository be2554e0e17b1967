"""Base input serializers: unknown fields are an error, not silently dropped."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

__all__ = ["StrictSerializer"]


class StrictSerializer(serializers.Serializer):
    """A plain ``Serializer`` that rejects keys it does not declare, naming each one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, f in self.fields.items() if not f.read_only})
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown}, code="unknown_field")
        return super().to_internal_value(data)
