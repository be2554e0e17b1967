"""Access requests: who approves what at each level, the state machine, notifications, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from governance.models import AccessRequest, Grant
from governance.services.access_requests import access_requests_expire
from ledger.models import AuditEvent
from tests.governance.conftest import errors

pytestmark = pytest.mark.django_db


def test_public_data_is_auto_approved_with_a_grant_for_the_requested_duration(ask, data_scientist, levelled):
    res = ask(data_scientist, [levelled["C1"]], purpose="analytics", duration="P7D")
    assert res.status_code == 201, res.json()
    body = res.json()
    assert body["state"] == "approved" and body["awaiting"] == [] and body["decided_by"] == "system"
    grant = Grant.objects.get(pk=body["grants"][0])
    assert grant.user == data_scientist and grant.approved_level == "C1"
    assert grant.valid_until - grant.valid_from == timedelta(days=7)
    assert mail.outbox[-1].to == [data_scientist.email] and "auto-approved" in mail.outbox[-1].subject


def test_internal_data_needs_an_owner_of_that_dataset(ask, act, data_scientist, data_owner, levelled, make_dataset):
    from tests.conftest import make_user

    stranger_owner = make_user("hugo", "data-owner", groups=("hr-analytics",))
    res = ask(data_scientist, [levelled["C2"]], purpose="analytics", duration="P7D")
    assert res.json()["state"] == "pending"
    assert [(a["role"], a["dataset"]) for a in res.json()["awaiting"]] == [("owner", str(levelled["C2"].pk))]
    assert mail.outbox[-1].to == [data_owner.email], "the owner group's members are notified"
    pk = res.json()["id"]
    # An owner of some other dataset is not an owner of this one: the request is not even visible to him.
    assert act(stranger_owner, pk, "approve").status_code == 404
    done = act(data_owner, pk, "approve", {"comment": "ok for the quarterly review"})
    assert done.status_code == 200, done.json()
    assert done.json()["state"] == "approved"
    assert done.json()["approvals"][0] | {"at": None} == {
        "role": "owner",
        "dataset": str(levelled["C2"].pk),
        "approver": "olive",
        "at": None,
        "comment": "ok for the quarterly review",
        "owner_fallback": False,
    }
    assert Grant.objects.get(request_id=pk).approved_level == "C2"


def test_secret_data_needs_owner_privacy_officer_and_steward_each_once(
    ask, act, data_scientist, data_owner, privacy_officer, data_steward, levelled
):
    res = ask(data_scientist, [levelled["C4"]], duration="PT8H")
    assert res.status_code == 201, res.json()
    pk = res.json()["id"]
    assert sorted(a["role"] for a in res.json()["awaiting"]) == ["data-steward", "owner", "privacy-officer"]
    notified = {address for m in mail.outbox for address in m.to}
    assert notified == {data_owner.email, privacy_officer.email, data_steward.email}
    assert act(privacy_officer, pk, "approve").json()["state"] == "pending"
    again = act(privacy_officer, pk, "approve")
    assert again.status_code == 409 and "already approved" in again.json()["detail"]
    assert act(data_owner, pk, "approve").json()["state"] == "pending"
    final = act(data_steward, pk, "approve")
    assert final.json()["state"] == "approved"
    assert sorted(a["approver"] for a in final.json()["approvals"]) == ["olive", "priya", "stella"]
    grant = Grant.objects.get(request_id=pk)
    assert grant.approved_level == "C4" and grant.valid_until - grant.valid_from == timedelta(hours=8)
    actions = list(AuditEvent.objects.filter(target_id=pk).values_list("action", flat=True))
    assert actions == [
        "governance.access_request.create",
        "governance.access_request.approve",
        "governance.access_request.approve",
        "governance.access_request.approve",
        "governance.access_request.approved",
    ]
    assert AuditEvent.objects.filter(action="governance.grant.create", target_id=str(grant.pk)).exists()


def test_a_person_with_two_roles_fills_one_of_them(
    client_for, ask, act, data_scientist, data_owner, multi_role, levelled
):
    pk = ask(data_scientist, [levelled["C4"]], duration="PT2H").json()["id"]
    first = act(multi_role, pk, "approve", {"role": "data-steward"})
    assert [a["role"] for a in first.json()["approvals"]] == ["data-steward"]
    second = act(multi_role, pk, "approve", {"role": "privacy-officer"})
    assert second.status_code == 409
    now = client_for(data_scientist).get(f"/api/v1/access-requests/{pk}").json()
    assert sorted(a["role"] for a in now["awaiting"]) == ["owner", "privacy-officer"]


def test_without_a_role_the_first_fillable_is_taken_and_a_role_you_lack_is_refused(
    ask, act, data_scientist, multi_role, levelled
):
    pk = ask(data_scientist, [levelled["C3"]]).json()["id"]
    assert act(multi_role, pk, "approve", {"role": "owner"}).status_code == 403
    res = act(multi_role, pk, "approve")
    assert [a["role"] for a in res.json()["approvals"]] == ["privacy-officer"]


def test_nobody_approves_their_own_request_and_nothing_is_written(ask, act, data_owner, levelled):
    pk = ask(data_owner, [levelled["C2"]], purpose="analytics").json()["id"]
    before = AuditEvent.objects.count()
    res = act(data_owner, pk, "approve")
    assert res.status_code == 403 and res.json()["code"] == "self_approval"
    assert AuditEvent.objects.count() == before and not Grant.objects.exists()


def test_the_requesters_own_dataset_falls_back_to_a_steward(ask, act, data_owner, data_steward, make_dataset):
    own = make_dataset("sales.public.leads", owners=["olive"], classification="C2")
    res = ask(data_owner, [own], purpose="analytics")
    assert res.json()["awaiting"][0]["owner_fallback"] is True
    assert data_steward.email in mail.outbox[-1].to
    assert act(data_steward, res.json()["id"], "approve").json()["state"] == "approved"


def test_deny_needs_a_reason_and_notifies_the_requester(ask, act, data_scientist, data_owner, levelled):
    pk = ask(data_scientist, [levelled["C2"]], purpose="analytics").json()["id"]
    assert errors(act(data_owner, pk, "deny")) == {"reason": "required"}
    res = act(data_owner, pk, "deny", {"reason": "Use the aggregated mart instead."})
    assert res.json()["state"] == "denied" and res.json()["decision_reason"] == "Use the aggregated mart instead."
    assert mail.outbox[-1].to == [data_scientist.email] and "denied" in mail.outbox[-1].subject
    assert act(data_owner, pk, "approve").status_code == 409
    assert not Grant.objects.exists()


def test_withdraw_is_for_the_requester_only(ask, act, data_scientist, data_owner, compliance_officer, levelled):
    pk = ask(data_scientist, [levelled["C2"]], purpose="analytics").json()["id"]
    assert act(compliance_officer, pk, "withdraw").status_code == 403
    assert act(data_owner, pk, "withdraw").status_code == 403
    res = act(data_scientist, pk, "withdraw", {"reason": "found another source"})
    assert res.json()["state"] == "withdrawn"
    assert act(data_scientist, pk, "withdraw").status_code == 409


def test_unanswered_requests_expire(ask, act, data_scientist, data_owner, levelled, django_capture_on_commit_callbacks):
    pk = ask(data_scientist, [levelled["C2"]], purpose="analytics").json()["id"]
    req = AccessRequest.objects.get(pk=pk)
    assert req.expires_at - req.created_at == timedelta(hours=72)
    assert access_requests_expire(now=req.expires_at - timedelta(seconds=1)) == 0
    AccessRequest.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # Past the deadline it is off the owner's queue and cannot be approved, even before the sweep ran.
    assert act(data_owner, pk, "approve").status_code == 404
    assert act(data_scientist, pk, "withdraw").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        assert access_requests_expire() == 1
    assert AccessRequest.objects.get(pk=pk).state == "expired"
    assert access_requests_expire() == 0
    assert AuditEvent.objects.filter(action="governance.access_request.expire", target_id=pk, actor_name="system")
    assert mail.outbox[-1].to == [data_scientist.email] and "expired" in mail.outbox[-1].subject
    assert not Grant.objects.exists()


def test_the_queue_lists_what_awaits_me(client_for, ask, act, data_scientist, data_owner, privacy_officer, levelled):
    c3 = ask(data_scientist, [levelled["C3"]]).json()["id"]
    c2 = ask(data_scientist, [levelled["C2"]], purpose="analytics").json()["id"]

    def queue(user):
        return [r["id"] for r in client_for(user).get("/api/v1/access-requests?awaiting=me").json()["results"]]

    assert queue(data_owner) == [c2, c3]
    assert queue(privacy_officer) == [c3]
    assert queue(data_scientist) == []
    act(privacy_officer, c3, "approve")
    assert queue(privacy_officer) == []
    assert client_for(privacy_officer).get(f"/api/v1/access-requests/{c3}").status_code == 200, "approved by her"
    assert errors(client_for(data_owner).get("/api/v1/access-requests?awaiting=you")) == {"awaiting": "invalid_choice"}


def test_listing_shows_mine_or_everything_for_compliance(
    client_for, ask, data_scientist, other_scientist, compliance_officer, admin_user, levelled
):
    mine = ask(data_scientist, [levelled["C1"]], purpose="analytics").json()["id"]
    theirs = ask(other_scientist, [levelled["C1"]], purpose="analytics").json()["id"]

    def listed(user):
        return {r["id"] for r in client_for(user).get("/api/v1/access-requests").json()["results"]}

    assert listed(data_scientist) == {mine}
    assert listed(other_scientist) == {theirs}
    assert listed(compliance_officer) == listed(admin_user) == {mine, theirs}
    assert client_for(data_scientist).get(f"/api/v1/access-requests/{theirs}").status_code == 404
    assert client_for(data_scientist).get("/api/v1/access-requests/not-a-uuid").status_code == 404


def test_several_datasets_need_each_owner_and_one_privacy_officer(
    ask, act, data_scientist, data_owner, privacy_officer, levelled, make_dataset
):
    from tests.conftest import make_user

    hugo = make_user("hugo", "data-owner", groups=("hr-analytics",))
    hr = make_dataset("hr.public.reviews", owners=["group:hr-analytics"], tags=["pii.email"])
    res = ask(data_scientist, [levelled["C3"], hr, levelled["C2"]], purpose="analytics", duration="P2D")
    assert res.status_code == 201, res.json()
    pk = res.json()["id"]
    awaiting = sorted((a["role"], a["dataset"]) for a in res.json()["awaiting"])
    assert awaiting == sorted(
        [
            ("owner", str(levelled["C3"].pk)),
            ("owner", str(hr.pk)),
            ("owner", str(levelled["C2"].pk)),
            ("privacy-officer", None),
        ]
    )
    olive = act(data_owner, pk, "approve").json()
    assert len(olive["approvals"]) == 2, "olive's one approval covers both datasets she owns"
    act(privacy_officer, pk, "approve")
    assert act(hugo, pk, "approve").json()["state"] == "approved"
    grants = {g.dataset_id: g for g in Grant.objects.filter(request_id=pk)}
    assert {g.approved_level for g in grants.values()} == {"C2", "C3"}
    assert all(g.valid_until - g.valid_from == timedelta(days=2) for g in grants.values())


# --- refused input: a clear 4xx naming the field, and nothing written -----------------------------------------------


@pytest.fixture
def nothing_written():
    counts = (AccessRequest.objects.count(), Grant.objects.count(), AuditEvent.objects.count())
    yield
    assert (AccessRequest.objects.count(), Grant.objects.count(), AuditEvent.objects.count()) == counts


@pytest.mark.parametrize(
    ("change", "status", "field", "code"),
    [
        ({"duration": "PT9H"}, 400, "duration", "duration_exceeds_policy"),
        ({"duration": "8 hours"}, 400, "duration", "invalid_duration"),
        ({"duration": "P1Y"}, 400, "duration", "invalid_duration"),
        ({"purpose": "curiosity"}, 400, "purpose", "unknown_purpose"),
        ({"purpose": "analytics"}, 400, "purpose", "purpose_not_allowed"),
        ({"datasets": ["7d3f2a9e-0000-4000-8000-000000000000"]}, 400, "datasets[0]", "unknown_dataset"),
        (
            {"datasets": [{"namespace": "postgres://warehouse:5432", "name": "nope"}]},
            400,
            "datasets[0]",
            "unknown_dataset",
        ),
        ({"datasets": ["not-a-uuid"]}, 400, "datasets[0]", "bad_id"),
        ({"datasets": []}, 400, "datasets", "empty"),
        ({"justification": ""}, 400, "justification", "blank"),
        ({"surprise": 1}, 400, "surprise", "unknown_field"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    ask, data_scientist, levelled, nothing_written, change, status, field, code
):
    body = {"datasets": [str(levelled["C4"].pk)], **change}
    res = ask(data_scientist, **body) if "datasets" in change else ask(data_scientist, [levelled["C4"]], **change)
    assert res.status_code == status, res.json()
    assert errors(res).get(field) == code, res.json()
    assert res.json()["detail"].startswith(field)


def test_listing_a_dataset_twice_is_refused(ask, data_scientist, levelled, nothing_written):
    res = ask(data_scientist, [levelled["C2"], levelled["C2"]], purpose="analytics")
    assert res.status_code == 400 and errors(res) == {"datasets[1]": "duplicate_dataset"}


def test_hidden_datasets_cannot_be_named_by_namespace_and_name(ask, data_scientist, levelled, nothing_written):
    secret = {"namespace": levelled["C4"].namespace, "name": levelled["C4"].name}
    res = ask(data_scientist, [secret])
    assert errors(res) == {"datasets[0]": "unknown_dataset"}


def test_a_hidden_dataset_asked_for_by_id_is_never_named_to_the_asker(
    ask, act, client_for, data_scientist, data_owner, privacy_officer, data_steward, levelled
):
    secret = levelled["C4"]
    leaks = (secret.name, secret.namespace, "C4", "PT8H")  # its name, its level, what the level implies

    def hidden(res):
        text = res.content.decode()
        return not [leak for leak in leaks if leak in text]

    refused = ask(data_scientist, [secret], purpose="analytics")
    assert refused.status_code == 400 and errors(refused) == {"purpose": "purpose_not_allowed"}
    assert hidden(refused), refused.content
    too_long = ask(data_scientist, [secret], purpose="incident-response", duration="P1D")
    assert errors(too_long) == {"duration": "duration_exceeds_policy"} and hidden(too_long)
    asked = ask(data_scientist, [secret])
    assert asked.status_code == 201
    assert asked.json()["datasets"] == [
        {"id": str(secret.pk), "namespace": None, "name": None, "level": None, "hidden": True}
    ]
    pk = asked.json()["id"]
    dana = client_for(data_scientist)
    for res in (dana.get(f"/api/v1/access-requests/{pk}"), dana.get("/api/v1/access-requests")):
        assert res.status_code == 200 and hidden(res)
    # The owner, who must decide, sees what is asked for.
    owned = client_for(data_owner).get(f"/api/v1/access-requests/{pk}").json()["datasets"][0]
    assert owned["name"] == secret.name and owned["level"] == "C4" and owned["hidden"] is False
    for approver in (data_owner, privacy_officer, data_steward):
        act(approver, pk, "approve")
    # With the grant in force the asker may see the dataset, and so its name.
    now_seen = dana.get(f"/api/v1/access-requests/{pk}").json()["datasets"][0]
    assert now_seen["name"] == secret.name and now_seen["hidden"] is False


def test_overlapping_requests_are_refused(ask, act, data_scientist, data_owner, levelled):
    first = ask(data_scientist, [levelled["C2"]], purpose="analytics")
    assert first.status_code == 201
    counts = (AccessRequest.objects.count(), AuditEvent.objects.count())
    again = ask(data_scientist, [levelled["C1"], levelled["C2"]], purpose="analytics")
    assert again.status_code == 409 and errors(again) == {"datasets[1]": "overlapping_request"}
    assert (AccessRequest.objects.count(), AuditEvent.objects.count()) == counts
    act(data_owner, first.json()["id"], "approve")
    granted = ask(data_scientist, [levelled["C2"]], purpose="analytics")
    assert granted.status_code == 409 and errors(granted) == {"datasets[0]": "already_granted"}
    other = ask(data_owner, [levelled["C1"]], purpose="analytics")
    assert other.status_code == 201, "another person's grant does not overlap"


def test_toxic_combinations_are_refused(ask, data_scientist, data_steward, make_dataset):
    from catalog import services as catalog

    catalog.tag_create(actor=data_steward, key="customer")
    catalog.tag_create(actor=data_steward, key="transactions.raw", implied_level="C2")
    customers = make_dataset("crm.public.people", tags=["customer"])
    payments = make_dataset("pay.public.card_tx", tags=["transactions.raw"], owners=["stella"])
    both = ask(data_scientist, [customers, payments], purpose="analytics")
    assert both.status_code == 409 and errors(both) == {"datasets": "toxic_combination"}
    assert "customer-with-raw-transactions" in both.json()["detail"]
    assert ask(data_scientist, [customers], purpose="analytics").json()["state"] == "approved"
    later = ask(data_scientist, [payments], purpose="analytics")
    assert later.status_code == 409 and "customer" in later.json()["detail"]
    assert AccessRequest.objects.count() == 1


def test_a_workspace_can_be_the_subject(
    ask, act, data_scientist, other_scientist, data_owner, levelled, workspace_templates
):
    from workspaces.services import workspace_create

    ws = str(workspace_create(actor=data_scientist, template="jupyter-cpu", start=False).pk)
    for stranger in (other_scientist, data_owner):  # only the workspace's owner (and admins) ask for it
        refused = ask(stranger, [levelled["C2"]], purpose="analytics", workspace={"id": ws, "label": "x"})
        assert refused.status_code == 403, refused.content
    res = ask(data_scientist, [levelled["C2"]], purpose="analytics", workspace={"id": ws, "label": "churn-notebook"})
    assert res.json()["subject"] == {
        "type": "workspace",
        "user": None,
        "workspace_id": ws,
        "workspace_label": "churn-notebook",
    }
    act(data_owner, res.json()["id"], "approve")
    grant = Grant.objects.get()
    assert grant.user is None and str(grant.workspace_id) == ws
    mine = ask(data_scientist, [levelled["C2"]], purpose="analytics")
    assert mine.status_code == 201, "the workspace's grant is not the person's"


def test_lists_cost_the_same_queries_for_one_row_or_many(
    client_for, ask, act, data_scientist, data_owner, make_dataset
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(url):
        with CaptureQueriesContext(connection) as ctx:
            res = client_for(data_owner).get(url)
        assert res.status_code == 200
        return len(ctx.captured_queries), len(res.json()["results"])

    def add(i):
        ds = make_dataset(f"sales.public.t{i}", owners=["group:sales-eng"], classification="C2")
        act(data_owner, ask(data_scientist, [ds], purpose="analytics").json()["id"], "approve")
        ask(data_scientist, [make_dataset(f"sales.public.u{i}", owners=["olive"], tags=["pii.email"])])

    add(0)
    (queue_q, queue_n), (grants_q, grants_n) = count("/api/v1/access-requests?awaiting=me"), count("/api/v1/grants")
    assert (queue_n, grants_n) == (1, 1)
    for i in range(1, 6):
        add(i)
    assert count("/api/v1/access-requests?awaiting=me") == (queue_q, 6)
    assert count("/api/v1/grants") == (grants_q, 6)
