"""The audit chain's head and signed checkpoints: a truncated tail and a chain rewritten whole in SQL (hashes
recomputed) are both detected, and verify names the first event after the last checkpoint that still holds."""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from governance.services import signing
from governance.services.audit_checkpoints import (
    AuditChainBroken,
    audit_checkpoint_create,
    audit_checkpoint_problem,
    audit_verify,
)
from governance.tasks import audit_checkpoint_task
from governance.token_verification import verify_token
from ledger import audit
from ledger.models import AuditCheckpoint, AuditEvent

pytestmark = pytest.mark.django_db


def seqs() -> list[int]:
    return list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))


def rewrite_in_sql(from_seq: int, **changes: str) -> None:
    """What someone with database access but no SECRET_KEY can do: change an event and recompute every hash
    from it on (and the head), so the chain is consistent in itself."""
    events = list(AuditEvent.objects.order_by("seq"))
    prev = audit.GENESIS
    with connection.cursor() as cursor:
        for event in events:
            if event.seq >= from_seq:
                if event.seq == from_seq:
                    for column, value in changes.items():
                        setattr(event, column, value)
                event.prev_hash = prev
                event.hash = audit._digest(prev, event)
                sets = ", ".join(f"{column} = %s" for column in [*changes, "prev_hash", "hash"])
                values = [getattr(event, c) for c in [*changes, "prev_hash", "hash"]]
                cursor.execute(f"UPDATE governance_auditevent SET {sets} WHERE seq = %s", [*values, event.seq])
            prev = event.hash
        cursor.execute("UPDATE governance_audithead SET last_hash = %s WHERE id = 1", [prev])


def test_a_clean_chain_with_checkpoints_verifies(client_for, compliance_officer, make_dataset):
    make_dataset("a")
    first = audit_checkpoint_create()
    make_dataset("b")
    second = audit_checkpoint_create()
    assert first.seq < second.seq == seqs()[-1]
    report = client_for(compliance_officer).get("/api/v1/audit/verify").json()
    assert report["ok"] is True and report["problems"] == [] and report["first_broken"] is None
    assert report["head"]["ok"] is True and report["checkpoints_checked"] == 2
    assert report["last_valid_checkpoint"]["seq"] == second.seq == report["latest_checkpoint"]["seq"]


def test_deleting_the_newest_events_is_detected_by_the_head(client_for, compliance_officer, make_dataset):
    for name in ("a", "b", "c"):
        make_dataset(name)
    kept = seqs()[:-2]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE seq > %s", [kept[-1]])
    report = client_for(compliance_officer).get("/api/v1/audit/verify").json()
    assert report["ok"] is False
    assert report["head"]["ok"] is False and report["head"]["last_seq"] == kept[-1]
    assert [p["code"] for p in report["problems"]] == ["head_mismatch"]
    assert report["first_unmatched_seq"] == kept[-1] + 1 and report["first_broken"] is None


def test_truncating_the_tail_and_moving_the_head_is_detected_by_a_checkpoint(make_dataset):
    make_dataset("a")
    kept = seqs()[-1]
    make_dataset("b")
    checkpoint = audit_checkpoint_create()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE seq > %s", [kept])
        cursor.execute(
            "UPDATE governance_audithead SET last_hash = (SELECT hash FROM governance_auditevent WHERE seq = %s)",
            [kept],
        )
    assert audit.verify() is None, "the events left are consistent in themselves"
    report = audit_verify()
    assert not report.ok and report.head["ok"] is True
    assert report.first_invalid_checkpoint == checkpoint and report.problems[-1]["message"] == "its event is missing"
    assert report.last_valid_checkpoint is None
    assert report.first_broken.seq == seqs()[0]  # nothing before holds: the first event is the first suspect


def test_a_chain_rewritten_whole_with_recomputed_hashes_is_detected(client_for, admin_user, make_dataset):
    make_dataset("a")
    audit_checkpoint_create()
    rewrite_in_sql(seqs()[0], actor_name="mallory")
    assert audit.verify() is None, "without checkpoints the rewrite would pass"
    report = client_for(admin_user).get("/api/v1/audit/verify").json()
    assert report["ok"] is False and report["head"]["ok"] is True
    assert report["problems"][0]["code"] == "checkpoint_mismatch"
    assert report["last_valid_checkpoint"] is None
    assert report["first_broken"]["seq"] == seqs()[0] and report["first_broken"]["actor"] == "mallory"


def test_verify_names_the_first_event_after_the_last_checkpoint_that_holds(make_dataset):
    make_dataset("a")
    good = audit_checkpoint_create()
    make_dataset("b")
    make_dataset("c")
    bad = audit_checkpoint_create()
    make_dataset("d")  # after the last checkpoint
    after_good = [s for s in seqs() if s > good.seq]
    rewrite_in_sql([s for s in after_good if s <= bad.seq][-1], reason="nothing to see")  # not the first after
    report = audit_verify()
    assert not report.ok
    assert report.last_valid_checkpoint == good and report.first_invalid_checkpoint == bad
    assert len(after_good) > 2 and report.first_broken.seq == after_good[0] == report.first_unmatched_seq


def test_an_edit_without_recomputing_is_still_named_exactly(make_dataset):
    make_dataset("a")
    good = audit_checkpoint_create()
    make_dataset("b")
    make_dataset("c")
    audit_checkpoint_create()
    victim = [s for s in seqs() if s > good.seq][1]  # the second after the good checkpoint, under the other
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET reason = 'x' WHERE seq = %s", [victim])
    report = audit_verify()
    assert report.first_broken.seq == victim and report.last_valid_checkpoint == good


def test_a_forged_checkpoint_does_not_verify(make_dataset):
    make_dataset("a")
    checkpoint = audit_checkpoint_create()
    rewrite_in_sql(seqs()[0], actor_name="mallory")
    # Without the private key the attacker can only edit the row, not the signature over it.
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(hash=seqs() and AuditEvent.objects.last().hash)
    checkpoint.refresh_from_db()
    assert audit_checkpoint_problem(checkpoint) == "the signed sequence or hash differs from the stored one"
    report = audit_verify()
    assert not report.ok and report.first_invalid_checkpoint == checkpoint


def test_checkpoints_are_signed_by_a_published_key_and_are_never_grant_tokens(client, make_dataset):
    make_dataset("a")
    checkpoint = audit_checkpoint_create()
    jwks = client.get("/.well-known/jwks.json").json()
    assert checkpoint.kid in [k["kid"] for k in jwks["keys"]]
    key = jwt.PyJWKSet.from_dict(jwks)[checkpoint.kid]
    claims = jwt.decode(checkpoint.signature, key=key, algorithms=["EdDSA"])
    assert claims == {
        "iss": settings.STEWARD_JWT_ISSUER,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": checkpoint.at.isoformat(),
    }
    with pytest.raises(jwt.InvalidTokenError):
        verify_token(checkpoint.signature, jwks)


def test_a_checkpoint_still_verifies_after_its_key_is_rotated_out_and_purged(make_dataset):
    make_dataset("a")
    checkpoint = audit_checkpoint_create()
    later = timezone.now() + timedelta(hours=2)
    signing.rotate(now=timezone.now())
    assert signing.purge_retired_keys(now=later) == [checkpoint.kid]
    assert audit_verify().ok  # the rotation's own audit events extend the chain after the checkpoint


def test_making_checkpoints_is_idempotent_and_refuses_a_broken_chain(make_dataset):
    make_dataset("a")
    first = audit_checkpoint_create()
    assert audit_checkpoint_create() == first and AuditCheckpoint.objects.count() == 1
    assert audit_checkpoint_task() == first.seq
    make_dataset("b")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET reason = 'x' WHERE seq = %s", [seqs()[-1]])
    with pytest.raises(AuditChainBroken):
        audit_checkpoint_create()
    assert AuditCheckpoint.objects.count() == 1


def test_beat_makes_checkpoints():
    entry = settings.CELERY_BEAT_SCHEDULE["governance-audit-checkpoint"]
    assert entry["task"] == "governance.audit_checkpoint"
    assert entry["schedule"] == 60.0 * settings.STEWARD_AUDIT_CHECKPOINT_MINUTES


def test_who_reads_and_makes_checkpoints(client_for, data_scientist, compliance_officer, make_dataset):
    make_dataset("a")
    scientist = client_for(data_scientist)
    assert scientist.post("/api/v1/audit/checkpoints").status_code == 403
    made = client_for(compliance_officer).post("/api/v1/audit/checkpoints")
    assert made.status_code == 201 and made.json()["seq"] == seqs()[-1]
    listed = scientist.get("/api/v1/audit/checkpoints")
    assert listed.status_code == 200 and [c["seq"] for c in listed.json()["results"]] == [made.json()["seq"]]
    assert set(listed.json()["results"][0]) == {"seq", "hash", "at", "kid", "public_jwk", "signature"}
    assert "d" not in listed.json()["results"][0]["public_jwk"], "never a private parameter"
    assert client_for(None).get("/api/v1/audit/checkpoints").status_code == 401
