"""Base input serializers: unknown fields are an error, not silently dropped; times must carry an offset."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from steward.times import TimeProblem, parse_aware_time

__all__ = ["AwareDateTimeField", "StrictSerializer"]


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with a UTC offset (``steward.times``): a naive, impossible or out-of-range one is refused."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            return parse_aware_time(value)
        except TimeProblem as problem:
            raise serializers.ValidationError(problem.message, code=problem.code) from None


class StrictSerializer(serializers.Serializer):
    """A plain ``Serializer`` that rejects keys it does not declare, naming each one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, f in self.fields.items() if not f.read_only})
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown}, code="unknown_field")
        return super().to_internal_value(data)
