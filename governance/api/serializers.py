"""Governance API shapes: output serializers, and input serializers that document (and check) request bodies."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.choices import ApproverRole, GrantState, RequestState
from governance.models import AccessRequest, Grant, PolicyVersion
from ledger.models import AuditCheckpoint, AuditEvent
from steward.api.serializers import StrictSerializer
from steward.durations import format_duration

# --- policy ------------------------------------------------------------------------------------------------------


class PolicyLevelSerializer(serializers.Serializer):
    auto_approve = serializers.BooleanField(help_text="True when the level needs no approval (no approvers).")
    approvers = serializers.ListField(child=serializers.ChoiceField(choices=ApproverRole.choices))
    max_duration = serializers.CharField(help_text="Longest grant, ISO 8601 (PT8H, P30D).")
    purposes = serializers.ListField(child=serializers.CharField())


class ToxicCombinationSerializer(serializers.Serializer):
    name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_blank=True)


class PolicySerializer(serializers.Serializer):
    """A policy version: metadata, then the document an edit replaces (purposes, levels, toxic combinations)."""

    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by_name")
    note = serializers.CharField()
    purposes = serializers.DictField(child=serializers.CharField())
    levels = serializers.SerializerMethodField()
    toxic_combinations = ToxicCombinationSerializer(many=True)

    @extend_schema_field(serializers.DictField(child=PolicyLevelSerializer()))
    def get_levels(self, obj: PolicyVersion) -> dict[str, Any]:
        return {code: {"auto_approve": not rule["approvers"], **rule} for code, rule in obj.levels.items()}


class PolicyInput(StrictSerializer):
    """A whole new policy document (checked by the policy service, which names each bad field)."""

    purposes = serializers.DictField(child=serializers.CharField(allow_blank=True))
    levels = serializers.DictField(child=serializers.DictField())
    toxic_combinations = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    base_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="The version you edited; 409 if it is no longer current.",
    )


# --- access requests ---------------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "uuid"},
            {
                "type": "object",
                "properties": {"id": {"type": "string", "format": "uuid"}},
                "required": ["id"],
            },
            {
                "type": "object",
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
                "required": ["namespace", "name"],
            },
        ]
    }
)
class DatasetRefField(serializers.Field):
    """A dataset id, ``{"id": ...}``, or ``{"namespace": ..., "name": ...}``."""

    default_error_messages = {
        "invalid": "Give a dataset id, or an object with namespace and name.",
        "bad_id": "Not a dataset id (a UUID).",
    }

    def to_internal_value(self, data: Any) -> UUID | tuple[str, str]:
        if isinstance(data, dict) and set(data) == {"id"}:
            data = data["id"]
        if isinstance(data, str):
            try:
                return UUID(data)
            except ValueError:
                self.fail("bad_id")
        if isinstance(data, dict) and set(data) == {"namespace", "name"}:
            if all(isinstance(data[k], str) and data[k] for k in ("namespace", "name")):
                return (data["namespace"], data["name"])
        self.fail("invalid")
        return None  # unreachable: fail() raises

    def to_representation(self, value: Any) -> Any:
        return str(value)


class WorkspaceInput(StrictSerializer):
    id = serializers.UUIDField()
    # A declared field named ``label``: DRF's metaclass moves it aside (no clash with ``Field.label`` at runtime).
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, max_length=200, default=""
    )


class AccessRequestInput(StrictSerializer):
    datasets = serializers.ListField(child=DatasetRefField(), allow_empty=False, max_length=100)
    purpose = serializers.CharField(max_length=64)
    justification = serializers.CharField(max_length=5000)
    duration = serializers.CharField(max_length=40, help_text="ISO 8601 duration: PT8H, P7D, P1DT12H.")
    workspace = WorkspaceInput(
        required=False, allow_null=True, help_text="Ask for a workspace instead of yourself (id and label)."
    )


class ApproveInput(StrictSerializer):
    role = serializers.ChoiceField(
        choices=ApproverRole.choices,
        required=False,
        allow_null=True,
        help_text="Which of your roles this approval is in; by default the first of owner, privacy officer, steward.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ReasonInput(StrictSerializer):
    reason = serializers.CharField(max_length=5000)


class OptionalReasonInput(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ReapproveInput(StrictSerializer):
    justification = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class DatasetRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    namespace = serializers.CharField()
    name = serializers.CharField()


class RequestDatasetSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    namespace = serializers.CharField(allow_null=True, help_text="Null when you may not see the dataset.")
    name = serializers.CharField(allow_null=True, help_text="Null when you may not see the dataset.")
    level = serializers.CharField(
        allow_null=True, help_text="The level its approvals were required for; null when you may not see the dataset."
    )
    hidden = serializers.BooleanField(help_text="You may not see this dataset: its name and level are withheld.")


class SubjectSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["user", "workspace"])
    user = serializers.CharField(allow_null=True)
    workspace_id = serializers.UUIDField(allow_null=True)
    workspace_label = serializers.CharField(allow_blank=True)


class ApprovalSerializer(serializers.Serializer):
    role = serializers.CharField()
    dataset = serializers.UUIDField(allow_null=True)
    approver = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    owner_fallback = serializers.BooleanField(help_text="An owner approval a data steward may give (no other owner).")


def _dataset_ref(ds: Any) -> dict[str, Any]:
    return {"id": ds.pk, "namespace": ds.namespace, "name": ds.name}


def _subject(obj: Any, user: Any) -> dict[str, Any]:
    if obj.workspace_id:
        return {
            "type": "workspace",
            "user": None,
            "workspace_id": obj.workspace_id,
            "workspace_label": obj.workspace_label,
        }
    return {"type": "user", "user": user.get_username() if user else None, "workspace_id": None, "workspace_label": ""}


class AccessRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    requester = serializers.CharField(source="requester.username")
    subject = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()
    purpose = serializers.CharField()
    justification = serializers.CharField()
    duration = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="A pending request expires at this time without a decision.")
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.SerializerMethodField()
    decision_reason = serializers.CharField(allow_blank=True)
    reapproval_of = serializers.UUIDField(source="reapproval_of_id", allow_null=True)
    policy_version = serializers.IntegerField(source="policy_version_id", allow_null=True)
    approvals = serializers.SerializerMethodField()
    awaiting = serializers.SerializerMethodField()
    grants = serializers.SerializerMethodField()

    @extend_schema_field(SubjectSerializer)
    def get_subject(self, obj: AccessRequest) -> dict[str, Any]:
        return _subject(obj, obj.requester)

    @extend_schema_field(RequestDatasetSerializer(many=True))
    def get_datasets(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return [
            {**_dataset_ref(i.dataset), "level": i.level, "hidden": False}
            if getattr(i, "dataset_visible", True)
            else {"id": i.dataset_id, "namespace": None, "name": None, "level": None, "hidden": True}
            for i in obj.items.all()
        ]

    def get_duration(self, obj: AccessRequest) -> str:
        return format_duration(obj.duration)

    @extend_schema_field(serializers.ChoiceField(choices=RequestState.choices))
    def get_state(self, obj: AccessRequest) -> str:
        return obj.state_at(timezone.now())

    def get_decided_by(self, obj: AccessRequest) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by else ("system" if obj.decided_at else None)

    def _slot(self, s: Any) -> dict[str, Any]:
        return {
            "role": s.role,
            "dataset": s.dataset_id,
            "approver": s.filled_by_name or None,
            "at": s.filled_at,
            "comment": s.comment,
            "owner_fallback": s.owner_fallback,
        }

    @extend_schema_field(ApprovalSerializer(many=True))
    def get_approvals(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return [self._slot(s) for s in obj.slots.all() if s.filled_at is not None]

    @extend_schema_field(ApprovalSerializer(many=True))
    def get_awaiting(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return [self._slot(s) for s in obj.slots.all() if s.filled_at is None]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_grants(self, obj: AccessRequest) -> list[str]:
        return [str(g.pk) for g in obj.grants.all()]


# --- grants ------------------------------------------------------------------------------------------------------


class GrantSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    subject = serializers.SerializerMethodField()
    dataset = serializers.SerializerMethodField()
    privilege = serializers.CharField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    state = serializers.SerializerMethodField()
    approved_level = serializers.CharField()
    dataset_level = serializers.CharField(source="dataset.effective_classification")
    request = serializers.UUIDField(source="request_id", allow_null=True)
    policy_version = serializers.IntegerField(source="policy_version_id", allow_null=True)
    suspended_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)
    revoke_reason = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field(SubjectSerializer)
    def get_subject(self, obj: Grant) -> dict[str, Any]:
        return _subject(obj, obj.user)

    @extend_schema_field(DatasetRefSerializer)
    def get_dataset(self, obj: Grant) -> dict[str, Any]:
        return _dataset_ref(obj.dataset)

    @extend_schema_field(serializers.ChoiceField(choices=GrantState.choices))
    def get_state(self, obj: Grant) -> str:
        return obj.state_at(timezone.now())


class GrantCredentialsSerializer(serializers.Serializer):
    """A login to the grant's table, shown once: the password is stored nowhere."""

    grant_id = serializers.UUIDField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    database = serializers.CharField()
    user = serializers.CharField(help_text="The grant's login role (stw_g_<grant id>).")
    password = serializers.CharField(help_text="Shown once; asking again sets a new one and the old one stops working.")
    valid_until = serializers.DateTimeField(help_text="The grant's end: PostgreSQL refuses logins from then on.")


class GrantTokenInput(StrictSerializer):
    lifetime_seconds = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=3600,
        help_text="At most 3600 (one hour, the default); never past the grant's end either way.",
    )


class GrantTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="A compact JWS (EdDSA) with the grant's id, subject and asset.")
    expires_at = serializers.DateTimeField(help_text="The token's exp claim.")
    jwks_url = serializers.URLField(help_text="Where verifiers fetch the public keys.")


# --- decisions ---------------------------------------------------------------------------------------------------


class AuthorizeInput(serializers.Serializer):
    """For the schema only: the view parses this by hand (it is the hot path)."""

    subject = serializers.JSONField(
        help_text='A user id (integer), a username (string, or "user:<name>"), or "workspace:<uuid>".'
    )
    action = serializers.ChoiceField(choices=["read"])
    asset = serializers.JSONField(help_text='A dataset id, or {"namespace": ..., "name": ...}.')
    at = serializers.DateTimeField(required=False, help_text="Decide as of this time (ISO 8601 with an offset).")


class AuthorizeBatchInput(serializers.Serializer):
    requests = AuthorizeInput(many=True)


class AuthorizeDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["allow", "deny"])
    reason = serializers.CharField()
    grant_id = serializers.UUIDField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the allowing grant ends.")


class AuthorizeBatchSerializer(serializers.Serializer):
    decisions = AuthorizeDecisionSerializer(many=True)


# --- audit -------------------------------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    target = serializers.CharField(source="target_repr")

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "at",
            "actor_id",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target",
            "request_id",
            "before",
            "after",
            "reason",
            "prev_hash",
            "hash",
        ]


class AuditCheckpointSerializer(serializers.ModelSerializer):
    signature = serializers.CharField(
        help_text="Compact JWS (EdDSA, typ steward-audit-checkpoint+jwt) over iss, seq, hash, at."
    )
    public_jwk = serializers.JSONField(help_text="The public key that signed it (its kid is the RFC 7638 thumbprint).")

    class Meta:
        model = AuditCheckpoint
        fields = ["seq", "hash", "at", "kid", "public_jwk", "signature"]


class AuditHeadSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="The chain ends with the event the head names.")
    last_seq = serializers.IntegerField(allow_null=True)
    last_hash = serializers.CharField(help_text="Hash of the chain's last event.")
    head_hash = serializers.CharField(help_text="Hash the head (moved with every append) says the chain ends with.")


class AuditProblemSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["event_hash", "head_mismatch", "checkpoint_mismatch"])
    seq = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class AuditVerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Events in the chain.")
    first_broken = AuditEventSerializer(
        allow_null=True,
        help_text="The first event after the last valid checkpoint that no longer matches: exactly the edited one "
        "when its hash was not recomputed; the first after that checkpoint when the chain was rewritten.",
    )
    first_unmatched_seq = serializers.IntegerField(
        allow_null=True, help_text="Its sequence number; or where a removed tail begins (no event left there)."
    )
    head = AuditHeadSerializer()
    checkpoints_checked = serializers.IntegerField()
    last_valid_checkpoint = AuditCheckpointSerializer(allow_null=True)
    first_invalid_checkpoint = AuditCheckpointSerializer(allow_null=True)
    latest_checkpoint = AuditCheckpointSerializer(
        allow_null=True, help_text="Compare with your own copies: a deleted checkpoint is only seen that way."
    )
    problems = AuditProblemSerializer(many=True)
