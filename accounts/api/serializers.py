"""Accounts API shapes: who am I, personal API tokens."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiToken
from steward.api.serializers import StrictSerializer


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]

    scopes = serializers.SerializerMethodField()

    def get_scopes(self, token: ApiToken) -> list[str]:
        return sorted(token.scope_set)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret. Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenInput(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=366, default=90)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=50),
        required=False,
        max_length=10,
        help_text="Limit the token to these scopes (`lineage:write`); a scoped token may do nothing else. "
        "Empty: a personal token with all of your rights.",
    )


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    groups = serializers.ListField(child=serializers.CharField())
