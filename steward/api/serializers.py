"""Base input serializers: unknown fields are an error, not silently dropped; times must carry an offset."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

__all__ = ["AwareDateTimeField", "StrictSerializer"]


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with a UTC offset: a naive one is refused (code ``naive_datetime``), never guessed."""

    default_error_messages = {"naive_datetime": "The time has no UTC offset; add one (e.g. Z or +01:00)."}

    def to_internal_value(self, value: Any) -> datetime:
        parsed = parse_datetime(value) if isinstance(value, str) else value
        if isinstance(parsed, datetime) and parsed.tzinfo is None:
            self.fail("naive_datetime")
        return super().to_internal_value(value)


class StrictSerializer(serializers.Serializer):
    """A plain ``Serializer`` that rejects keys it does not declare, naming each one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, f in self.fields.items() if not f.read_only})
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown}, code="unknown_field")
        return super().to_internal_value(data)
