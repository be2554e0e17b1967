"""The append-only, hash-chained audit log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One change or decision, with its actor. ``hash`` covers this event and the previous hash.

    Rows are only ever inserted (``ledger.audit.record``); ``audit verify`` recomputes the chain.
    """

    seq = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=600, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "governance_auditevent"  # created by governance before the move
        ordering = ["seq"]
        # Five indexes, each maintained on every append (denials come 400 to a batch of decisions): ``action`` in
        # one pattern-ops index (equality and the audit filter's prefix), ``target_id`` in a plain one (equality,
        # ``IN``); ``db_index=True`` would add a second, ``_like`` index to each.
        indexes = [
            models.Index(fields=["target_type", "target_id", "seq"]),
            models.Index(fields=["action"], name="audit_action_idx", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["target_id"], name="audit_target_id_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_repr}"


class AuditHead(models.Model):
    """A single row locked while appending, so concurrent writers extend the chain in order."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "governance_audithead"  # created by governance before the move

    def __str__(self) -> str:
        return self.last_hash


class AuditCheckpoint(models.Model):
    """A signed statement "the chain's event ``seq`` had hash ``hash`` at ``at``" (a compact JWS, EdDSA).

    Signed with the service's grant-token signing key in force (``governance.services.signing``); the key's
    public JWK is kept with the checkpoint so it still verifies after that key is rotated out and purged.
    Published at ``GET /api/v1/audit/checkpoints`` so outside parties can keep copies: rewriting the chain,
    even with recomputed hashes, no longer matches a checkpoint signed before the rewrite.
    """

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    kid = models.CharField(max_length=64)
    public_jwk = models.JSONField()
    signature = models.TextField(help_text="Compact JWS over the claims iss, seq, hash, at.")

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} {self.hash[:12]}"
