"""Grants: exact windows, revocation, the expiry sweep, the grant_changed hook, suspension on reclassification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from catalog import services as catalog
from governance.authorization import DecisionQuery, decide_many
from governance.models import AccessRequest, Grant, GrantSuspension
from governance.selectors import grants_valid_at
from governance.services.grants import grants_expire
from governance.signals import grant_changed
from ledger.models import AuditEvent
from lineage.propagation import drain
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.governance.conftest import errors
from tests.lineage.events import NS, complete

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes():
    """Every ``grant_changed`` announcement, as (change, grant ids)."""
    seen: list[tuple[str, list]] = []

    def receiver(*, grant_ids, change, **_):
        seen.append((change, grant_ids))

    grant_changed.connect(receiver, dispatch_uid="test-grant-changed")
    yield seen
    grant_changed.disconnect(dispatch_uid="test-grant-changed")


@pytest.fixture
def granted(ask, act, data_scientist, data_owner, levelled, changes):
    """dana holds an approved C2 grant on sales.public.orders for 7 days."""
    pk = ask(data_scientist, [levelled["C2"]], purpose="analytics", duration="P7D").json()["id"]
    act(data_owner, pk, "approve")
    return Grant.objects.get(request_id=pk)


def decide(grant, at=None, user=None):
    (d,) = decide_many(
        [DecisionQuery(user_id=(user or grant.user).pk, dataset_id=grant.dataset_id, at=at)], now=timezone.now()
    )
    return d


def test_approval_announces_the_new_grant(granted, changes):
    assert changes == [("created", [granted.pk])]


def test_a_grant_is_valid_exactly_inside_its_window_whatever_the_sweep_did(granted):
    end = granted.valid_until
    assert decide(granted, at=granted.valid_from).reason == "granted"
    assert decide(granted, at=end - timedelta(microseconds=1)).decision == "allow"
    assert decide(granted, at=end).reason == "expired"
    assert decide(granted, at=granted.valid_from - timedelta(microseconds=1)).reason == "not_yet_valid"
    # The window has ended but no sweep has run: the row still says active, the decision still says no.
    Grant.objects.filter(pk=granted.pk).update(
        valid_from=timezone.now() - timedelta(hours=2), valid_until=timezone.now() - timedelta(milliseconds=1)
    )
    assert Grant.objects.get(pk=granted.pk).state == "active"
    assert decide(granted).reason == "expired"


def test_the_expiry_sweep_marks_state_audits_and_announces(granted, changes, django_capture_on_commit_callbacks):
    assert grants_expire(now=granted.valid_until - timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire(now=granted.valid_until) == 1
    assert Grant.objects.get(pk=granted.pk).state == "expired"
    assert changes[-1] == ("expired", [granted.pk])
    assert AuditEvent.objects.filter(action="governance.grant.expire", target_id=str(granted.pk)).count() == 1
    assert grants_expire(now=granted.valid_until + timedelta(hours=1)) == 0


def test_revocation_needs_a_reason_and_takes_effect_at_once(
    act, client_for, granted, data_scientist, data_owner, changes
):
    assert errors(act(data_owner, granted.pk, "revoke", kind="grants")) == {"reason": "required"}
    res = act(data_owner, granted.pk, "revoke", {"reason": "Project ended."}, kind="grants")
    assert res.status_code == 200, res.json()
    assert res.json()["state"] == "revoked" and res.json()["revoke_reason"] == "Project ended."
    assert res.json()["revoked_by"] == "olive"
    assert changes[-1] == ("revoked", [granted.pk])
    assert mail.outbox[-1].to == [data_scientist.email] and "revoked" in mail.outbox[-1].subject
    revoked = Grant.objects.get(pk=granted.pk)
    assert decide(granted).reason == "revoked"
    # As of a time before the revocation, the grant was valid (audits ask about the past).
    assert decide(granted, at=revoked.revoked_at - timedelta(microseconds=1)).decision == "allow"
    assert act(data_owner, granted.pk, "revoke", {"reason": "again"}, kind="grants").status_code == 409
    event = AuditEvent.objects.get(action="governance.grant.revoke")
    assert event.actor_name == "olive" and event.reason == "Project ended."


def test_who_may_revoke(act, granted, data_scientist, other_scientist, compliance_officer):
    assert act(other_scientist, granted.pk, "revoke", {"reason": "x"}, kind="grants").status_code == 404
    assert act(compliance_officer, granted.pk, "revoke", {"reason": "x"}, kind="grants").status_code == 403
    assert act(data_scientist, granted.pk, "revoke", {"reason": "done early"}, kind="grants").status_code == 200


def test_listing_grants(client_for, granted, data_scientist, other_scientist, data_owner, compliance_officer):
    def listed(user, query=""):
        return [g["id"] for g in client_for(user).get(f"/api/v1/grants{query}").json()["results"]]

    assert listed(data_scientist) == listed(data_owner) == listed(compliance_officer) == [str(granted.pk)]
    assert listed(other_scientist) == []
    assert listed(compliance_officer, "?state=revoked") == []
    assert listed(compliance_officer, f"?dataset={granted.dataset_id}&user=dana") == [str(granted.pk)]
    assert client_for(other_scientist).get(f"/api/v1/grants/{granted.pk}").status_code == 404
    detail = client_for(data_scientist).get(f"/api/v1/grants/{granted.pk}").json()
    assert detail["subject"]["user"] == "dana" and detail["approved_level"] == detail["dataset_level"] == "C2"
    assert errors(client_for(data_scientist).get("/api/v1/grants?state=gone")) == {"state": "invalid_choice"}


def test_grants_valid_at_lists_what_the_data_plane_should_allow(granted, data_owner, act):
    t = granted.valid_from + timedelta(hours=1)
    assert list(grants_valid_at(at=t)) == [granted]
    assert list(grants_valid_at(at=granted.valid_until)) == []
    act(data_owner, granted.pk, "revoke", {"reason": "x"}, kind="grants")
    assert list(grants_valid_at(at=timezone.now() + timedelta(seconds=1))) == []
    assert list(grants_valid_at(at=granted.valid_from)) == [granted], "it was valid before the revocation"


# --- suspension when the classification rises ----------------------------------------------------------------------


@pytest.fixture
def pipeline(make_dataset, data_owner, data_steward):
    """raw → (job load) → clean, both owned by sales-eng; clean is C2 by itself."""
    raw = make_dataset("sales.public.raw_events", owners=["group:sales-eng"])
    clean = make_dataset("sales.public.clean_events", owners=["group:sales-eng"], classification="C2")
    ingest(
        actor=make_producer(data_steward, NS, "etl"), events=[complete("load", [raw.name], [clean.name])], batch=True
    )
    drain()
    return raw, clean


def test_a_propagated_tag_suspends_the_grant_until_reapproved(
    ask,
    act,
    client_for,
    pipeline,
    data_scientist,
    data_owner,
    data_steward,
    privacy_officer,
    changes,
    django_capture_on_commit_callbacks,
):
    raw, clean = pipeline
    pk = ask(data_scientist, [clean], purpose="analytics", duration="P3D").json()["id"]
    act(data_owner, pk, "approve")
    grant = Grant.objects.get(request_id=pk)
    assert decide(grant).decision == "allow"

    # An upstream column of personal data: the tag propagates along lineage and clean becomes C3.
    with django_capture_on_commit_callbacks(execute=True):
        catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="pii.email")
        drain()
    clean.refresh_from_db()
    assert clean.effective_classification == "C3"
    grant.refresh_from_db()
    assert grant.state == "suspended" and grant.approved_level == "C2"
    assert decide(grant).reason == "suspended"
    assert changes[-1] == ("suspended", [grant.pk])
    assert mail.outbox[-1].to == [data_scientist.email] and "suspended" in mail.outbox[-1].subject
    suspend = AuditEvent.objects.get(action="governance.grant.suspend")
    assert suspend.actor_name == "system" and "C3" in suspend.reason

    # A fresh request for the same dataset is refused: ask for the re-approval instead.
    again = ask(data_scientist, [clean], purpose="analytics")
    assert again.status_code == 409 and "re-approval" in again.json()["detail"]
    assert act(data_owner, grant.pk, "reapprove", kind="grants").status_code == 403, "only the holder asks"
    re = act(data_scientist, grant.pk, "reapprove", {"justification": "still needed"}, kind="grants")
    assert re.status_code == 201, re.json()
    assert re.json()["reapproval_of"] == str(grant.pk)
    assert sorted(a["role"] for a in re.json()["awaiting"]) == ["owner", "privacy-officer"]
    act(data_owner, re.json()["id"], "approve")
    assert decide(grant).reason == "suspended", "one of two approvals is not enough"
    done = act(privacy_officer, re.json()["id"], "approve")
    assert done.json()["state"] == "approved"
    grant.refresh_from_db()
    assert grant.state == "active" and grant.approved_level == "C3" and grant.suspended_at is None
    assert decide(grant).decision == "allow"
    assert changes[-1] == ("resumed", [grant.pk])
    assert Grant.objects.count() == 1, "the same grant resumed; no second grant"

    # The suspension period stays on record: a decision about that time still says suspended.
    period = GrantSuspension.objects.get(grant=grant)
    assert period.level == "C3" and period.end_reason == "re-approved"
    assert decide(grant, at=period.started_at).reason == "suspended"
    assert decide(grant, at=period.ended_at).decision == "allow"
    assert decide(grant, at=period.started_at - timedelta(microseconds=1)).decision == "allow"


def test_the_grant_resumes_when_the_level_falls_back(ask, act, pipeline, data_scientist, data_owner, data_steward):
    raw, clean = pipeline
    act(data_owner, ask(data_scientist, [clean], purpose="analytics").json()["id"], "approve")
    grant = Grant.objects.get()
    catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="secret.source")
    drain()
    assert decide(grant).reason == "suspended"
    catalog.dataset_tag_remove(actor=data_steward, dataset=raw, key="secret.source")
    drain()
    grant.refresh_from_db()
    assert grant.state == "active" and decide(grant).decision == "allow"
    assert list(AuditEvent.objects.filter(target_id=str(grant.pk)).values_list("action", flat=True)) == [
        "governance.grant.create",
        "governance.grant.suspend",
        "governance.grant.resume",
    ]


def test_a_pending_request_is_escalated_when_its_dataset_rises(
    ask, act, pipeline, data_scientist, data_owner, data_steward, privacy_officer, django_capture_on_commit_callbacks
):
    raw, clean = pipeline
    pk = ask(data_scientist, [clean], purpose="incident-response", duration="PT4H").json()["id"]
    assert privacy_officer.email not in mail.outbox[-1].to
    with django_capture_on_commit_callbacks(execute=True):
        catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="pii.email")
        drain()
    assert mail.outbox[-1].to == [privacy_officer.email] and "awaits your approval" in mail.outbox[-1].subject
    approved_by_owner = act(data_owner, pk, "approve").json()
    assert approved_by_owner["state"] == "pending"
    assert [a["role"] for a in approved_by_owner["awaiting"]] == ["privacy-officer"]
    assert approved_by_owner["datasets"][0]["level"] == "C3"
    assert act(privacy_officer, pk, "approve").json()["state"] == "approved"
    assert Grant.objects.get().approved_level == "C3"


def test_escalation_to_a_level_that_forbids_the_purpose_denies_the_request(ask, pipeline, data_scientist, data_steward):
    raw, clean = pipeline
    pk = ask(data_scientist, [clean], purpose="analytics").json()["id"]
    catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="secret.source")
    drain()
    req = AccessRequest.objects.get(pk=pk)
    assert req.state == "denied" and "C4" in req.decision_reason and "analytics" in req.decision_reason


def test_holders_of_a_valid_grant_see_the_hidden_dataset(
    ask, act, client_for, data_scientist, data_owner, privacy_officer, data_steward, levelled
):
    secret = levelled["C4"]
    assert client_for(data_scientist).get(f"/api/v1/datasets/{secret.pk}").status_code == 404
    pk = ask(data_scientist, [secret], duration="PT1H").json()["id"]  # by id: allowed, the id was shared
    for approver in (data_owner, privacy_officer, data_steward):
        act(approver, pk, "approve")
    grant = Grant.objects.get()
    assert client_for(data_scientist).get(f"/api/v1/datasets/{secret.pk}").status_code == 200
    act(data_scientist, grant.pk, "revoke", {"reason": "done"}, kind="grants")
    assert client_for(data_scientist).get(f"/api/v1/datasets/{secret.pk}").status_code == 404


def test_grant_list_refuses_a_malformed_dataset_filter(client_for, data_scientist):
    """A filter value that is not an id is the caller's mistake (400 naming it), not a missing object (404)."""
    response = client_for(data_scientist).get("/api/v1/grants", {"dataset": "not-a-uuid"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "dataset"
