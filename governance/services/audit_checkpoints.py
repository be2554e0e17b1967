"""Signed audit checkpoints and the full verification of the chain: events, head and checkpoints.

The hash chain alone detects an edited or deleted event, but not a truncated tail (nothing after the cut is
left to disagree) nor a chain rewritten whole with recomputed hashes by someone with database access. So:

- **Head.** ``AuditHead.last_hash`` is moved in the same statement as every append; verify compares it with the
  last event's hash, so deleting the newest events is detected (unless the head is rewritten too, below).
- **Checkpoints.** Periodically (Celery beat, ``governance.audit_checkpoint``) and on demand
  (``POST /api/v1/audit/checkpoints``) the service signs ``(seq, hash, at)`` of the chain's last event with its
  Ed25519 signing key (the grant-token key, ``governance.services.signing``), after re-verifying the events
  since the previous checkpoint, so it never signs a broken chain. Signing needs ``SECRET_KEY`` (the private
  key is stored encrypted under it): database access alone cannot forge one. Checkpoints are published at
  ``GET /api/v1/audit/checkpoints`` so outside parties keep copies; deleting checkpoints from the database
  is only detected by comparing with those copies (``latest_checkpoint`` in verify's report helps).

Creating a checkpoint is not itself an audit event: it would append to the chain it just sealed, and every
period would then have something new to checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.services import signing
from governance.token_verification import ALGORITHMS
from ledger import audit
from ledger.models import AuditCheckpoint, AuditEvent
from steward.errors import Conflict

__all__ = [
    "CHECKPOINT_TYP",
    "AuditChainBroken",
    "VerifyReport",
    "audit_checkpoint_create",
    "audit_checkpoint_problem",
    "audit_verify",
]

# The JWS ``typ`` header of a checkpoint: never accepted where a grant token is expected (no aud, no exp).
CHECKPOINT_TYP = "steward-audit-checkpoint+jwt"
_CLAIMS = ["iss", "seq", "hash", "at"]


class AuditChainBroken(Conflict):
    """The chain since the last checkpoint does not verify: nothing is signed until it is looked into."""

    code = "audit_chain_broken"


@transaction.atomic
def audit_checkpoint_create(*, now: datetime | None = None) -> AuditCheckpoint | None:
    """Sign the chain's current last event; ``None`` on an empty log. Idempotent (returns the checkpoint
    already made for that event). Holds the head's lock, so no event is appended meanwhile.

    Raises ``AuditChainBroken`` when the events since the previous checkpoint do not verify or the chain's
    end does not match its head.
    """
    now = now or timezone.now()
    signing.key_in_force(now)  # a first key's creation is audited: before the head is read, not after
    head = audit.head_hash(lock=True)
    previous = AuditCheckpoint.objects.order_by("-seq").first()
    after_seq, after_hash = (previous.seq, previous.hash) if previous else (0, audit.GENESIS)
    if previous is not None and not AuditEvent.objects.filter(seq=previous.seq, hash=previous.hash).exists():
        raise AuditChainBroken(f"Event {previous.seq} no longer matches its checkpoint; run the audit verify.")
    chain = audit.walk(after_seq=after_seq, after_hash=after_hash)
    if chain.first_broken is not None:
        raise AuditChainBroken(f"Event {chain.first_broken.seq} does not verify; run the audit verify.")
    if chain.last_hash != head:
        raise AuditChainBroken("The chain's last event does not match the head (a truncated tail?).")
    if chain.last_seq is None:
        return None
    if previous is not None and previous.seq == chain.last_seq:
        return previous
    at = now.replace(microsecond=0)
    claims = {"iss": settings.STEWARD_JWT_ISSUER, "seq": chain.last_seq, "hash": chain.last_hash, "at": at.isoformat()}
    token, key = signing.sign_document(claims, typ=CHECKPOINT_TYP, now=now)
    return AuditCheckpoint.objects.create(
        seq=chain.last_seq,
        hash=chain.last_hash,
        at=at,
        kid=key.kid,
        public_jwk=key.public_jwk,
        signature=token,
    )


def audit_checkpoint_problem(checkpoint: AuditCheckpoint) -> str | None:
    """Why the checkpoint's signature does not vouch for its row (``None`` when it does)."""
    try:
        header = jwt.get_unverified_header(checkpoint.signature)
        if header.get("typ") != CHECKPOINT_TYP:
            return "not a checkpoint signature"
        if header.get("kid") != checkpoint.kid or signing.public_key_id(checkpoint.public_jwk) != checkpoint.kid:
            return "the signing key does not match its id"
        claims = jwt.decode(
            checkpoint.signature,
            key=jwt.PyJWK(checkpoint.public_jwk),
            algorithms=ALGORITHMS,
            options={"require": _CLAIMS, "verify_aud": False},
        )
    except (jwt.InvalidTokenError, jwt.PyJWKError, KeyError, ValueError) as exc:
        return f"bad signature ({exc.__class__.__name__})"
    if claims["seq"] != checkpoint.seq or claims["hash"] != checkpoint.hash:
        return "the signed sequence or hash differs from the stored one"
    return None


@dataclass
class VerifyReport:
    """Everything ``audit_verify`` found. ``first_broken`` is the first event after the last valid checkpoint
    that no longer matches (exactly the edited one when its hash was not recomputed); ``first_unmatched_seq``
    its sequence number, or where a missing tail begins."""

    ok: bool
    checked: int
    first_broken: AuditEvent | None
    first_unmatched_seq: int | None
    head: dict[str, Any]
    checkpoints_checked: int
    last_valid_checkpoint: AuditCheckpoint | None
    first_invalid_checkpoint: AuditCheckpoint | None
    latest_checkpoint: AuditCheckpoint | None
    problems: list[dict[str, Any]] = field(default_factory=list)


def audit_verify() -> VerifyReport:
    """Recompute the whole chain, compare its end with the head and every checkpoint with the event it names."""
    checkpoints = list(AuditCheckpoint.objects.order_by("seq"))
    chain = audit.walk(collect=frozenset(c.seq for c in checkpoints))
    head = audit.head_hash()
    problems: list[dict[str, Any]] = []
    broken = chain.first_broken
    if broken is not None:
        problems.append({"code": "event_hash", "seq": broken.seq, "message": "hash or link to the previous is wrong"})
    head_ok = head == chain.last_hash
    if not head_ok:
        problems.append(
            {
                "code": "head_mismatch",
                "seq": chain.last_seq,
                "message": "the chain's last event is not the one the head names: events were removed from the end",
            }
        )

    last_valid: AuditCheckpoint | None = None
    first_invalid: AuditCheckpoint | None = None
    for checkpoint in checkpoints:
        problem = audit_checkpoint_problem(checkpoint)
        if problem is None:
            stored = chain.hashes_at.get(checkpoint.seq)
            if stored is None:
                problem = "its event is missing"
            elif stored != checkpoint.hash:
                problem = "its event's hash differs: the chain was rewritten"
        if problem is not None:
            first_invalid = checkpoint
            problems.append({"code": "checkpoint_mismatch", "seq": checkpoint.seq, "message": problem})
            break
        if broken is not None and broken.seq <= checkpoint.seq:
            break  # the break is reported exactly; later checkpoints add nothing
        last_valid = checkpoint

    first_unmatched = broken
    unmatched_seq = broken.seq if broken else None
    base = last_valid.seq if last_valid else 0
    if first_invalid is not None or not head_ok:
        # The chain is consistent in itself, so which event changed cannot be told: the first after the last
        # checkpoint that still holds is the first that may no longer match.
        after = AuditEvent.objects.filter(seq__gt=base).order_by("seq").first()
        if first_invalid is None:  # only the tail is gone: it starts after the last event left
            after, candidate = None, (chain.last_seq or 0) + 1
        else:
            candidate = after.seq if after else base + 1
        if unmatched_seq is None or candidate < unmatched_seq:
            first_unmatched, unmatched_seq = after, candidate
    return VerifyReport(
        ok=not problems,
        checked=chain.checked,
        first_broken=first_unmatched,
        first_unmatched_seq=unmatched_seq,
        head={"ok": head_ok, "last_seq": chain.last_seq, "last_hash": chain.last_hash, "head_hash": head},
        checkpoints_checked=len(checkpoints),
        last_valid_checkpoint=last_valid,
        first_invalid_checkpoint=first_invalid,
        latest_checkpoint=checkpoints[-1] if checkpoints else None,
        problems=problems,
    )
