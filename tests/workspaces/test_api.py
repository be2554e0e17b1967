"""The workspace API: creation and its checks (grants, toxic combinations, templates, resources, quotas),
visibility, stop/start/delete requests. The reconciler is not run here (see test_reconcile_*.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from catalog import services as catalog
from governance.models import Grant
from ledger.models import AuditEvent
from steward.identity import Role
from tests.conftest import make_user
from tests.workspaces.conftest import NS, errors
from workspaces.models import Project, Workspace, WorkspaceDataset, WorkspaceEvent

URL = "/api/v1/workspaces"


@pytest.fixture
def orders(make_dataset):
    return make_dataset("sales.public.orders")


@pytest.fixture
def customers(make_dataset):
    return make_dataset("crm.public.customers")


def create(client, **body):
    return client.post(URL, {"template": "jupyter-cpu", **body}, format="json")


def test_create_mounts_granted_datasets_through_grants_of_the_workspace(
    client_for, data_scientist, grant, orders, customers
):
    mine = {g.dataset_id: g for g in grant(data_scientist, orders, customers)}

    res = create(
        client_for(data_scientist),
        name="churn analysis",
        datasets=[str(orders.pk), {"namespace": NS, "name": "crm.public.customers"}],
        resources={"cpu": "500m", "memory": "1Gi"},
    )

    assert res.status_code == 201, res.content
    body = res.json()
    assert (body["state"], body["desired_state"], body["owner"], body["template"]) == (
        "requested",
        "running",
        "dana",
        "jupyter-cpu",
    )
    assert body["resources"] == {"cpu": "500m", "memory": "1Gi", "gpu": 0}
    assert body["connector"] == "local" and body["url"] == ""
    assert [e["to_state"] for e in body["events"]] == ["requested"]
    workspace = Workspace.objects.get(pk=body["id"])
    own = {g.dataset_id: g for g in Grant.objects.filter(workspace_id=workspace.pk)}
    assert set(own) == {orders.pk, customers.pk}
    for dataset_id, g in own.items():  # same window end, level and request as the owner's grant
        assert g.user_id is None and g.workspace_label == "churn analysis (dana)"
        assert (g.valid_until, g.approved_level, g.request_id) == (
            mine[dataset_id].valid_until,
            mine[dataset_id].approved_level,
            mine[dataset_id].request_id,
        )
    links = {link.dataset_id: link for link in WorkspaceDataset.objects.filter(workspace=workspace)}
    assert {k: (v.source_grant_id, v.grant_id) for k, v in links.items()} == {d: (mine[d].pk, own[d].pk) for d in own}
    assert {d["name"]: d["grant_id"] for d in body["datasets"]} == {
        "sales.public.orders": str(own[orders.pk].pk),
        "crm.public.customers": str(own[customers.pk].pk),
    }
    assert AuditEvent.objects.filter(action="workspaces.workspace.create", target_id=str(workspace.pk)).exists()


def test_template_defaults_apply_and_a_workspace_may_have_no_data(client_for, data_scientist):
    res = create(client_for(data_scientist), template="jupyter-gpu")

    assert res.status_code == 201, res.content
    assert res.json()["resources"] == {"cpu": "4", "memory": "16Gi", "gpu": 1}
    assert res.json()["datasets"] == []


def test_datasets_without_a_valid_grant_are_refused_naming_them(client_for, data_scientist, grant, orders, customers):
    grant(data_scientist, orders)

    res = create(client_for(data_scientist), datasets=[str(orders.pk), str(customers.pk)])

    assert res.status_code == 403
    assert errors(res) == {"datasets[1]": "not_granted"}
    assert "postgres://warehouse:5432/crm.public.customers" in res.json()["detail"]
    assert "sales.public.orders" not in res.json()["detail"]
    assert not Workspace.objects.exists() and not Grant.objects.filter(workspace_id__isnull=False).exists()


def test_a_revoked_or_someone_elses_grant_does_not_cover(
    client_for, data_scientist, other_scientist, grant, orders, customers
):
    grant(other_scientist, customers)
    (mine,) = grant(data_scientist, orders)
    client_for(data_scientist).post(f"/api/v1/grants/{mine.pk}/revoke", {"reason": "done"}, format="json")

    res = create(client_for(data_scientist), datasets=[str(orders.pk), str(customers.pk)])

    assert res.status_code == 403 and errors(res) == {"datasets[0]": "not_granted", "datasets[1]": "not_granted"}


def test_toxic_combinations_are_refused(client_for, data_scientist, data_steward, grant, orders, customers):
    grant(data_scientist, orders, customers)
    for key, dataset in (("customer", customers), ("transactions.raw", orders)):
        catalog.tag_create(actor=data_steward, key=key)
        catalog.dataset_tag_add(actor=data_steward, dataset=dataset, key=key)

    both = create(client_for(data_scientist), datasets=[str(orders.pk), str(customers.pk)])
    one = create(client_for(data_scientist), datasets=[str(orders.pk)])

    assert both.status_code == 409 and errors(both) == {"datasets": "toxic_combination"}
    assert "customer-with-raw-transactions" in both.json()["detail"]
    assert one.status_code == 201


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"template": "emacs"}, {"template": "unknown_template"}),
        ({"resources": {"cpu": "lots"}}, {"resources.cpu": "invalid_quantity"}),
        ({"resources": {"cpu": "0"}}, {"resources.cpu": "invalid_quantity"}),
        (
            {"resources": {"memory": "4 gigs", "gpu": -1}},
            {"resources.memory": "invalid_quantity", "resources.gpu": "invalid_gpu"},
        ),
        ({"resources": {"ram": "1Gi"}}, {"resources.ram": "unknown_field"}),
        ({"resources": {"cpu": "9"}}, {"resources.cpu": "over_quota"}),
        (
            {"resources": {"memory": "64Gi", "gpu": 2}},
            {"resources.memory": "over_quota", "resources.gpu": "over_quota"},
        ),
        ({"project": "nowhere"}, {"project": "unknown_project"}),
        ({"datasets": ["not-a-uuid"]}, {"datasets[0]": "bad_id"}),
        ({"datasets": ["9b2f0a4e-1111-4c3b-9a7e-2c1d3e4f5a6b"]}, {"datasets[0]": "unknown_dataset"}),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(client_for, data_scientist, body, expected):
    res = create(client_for(data_scientist), **body)

    assert res.status_code == 400, res.content
    assert errors(res) == expected
    assert not Workspace.objects.exists()


def test_the_quota_counts_workspaces_and_the_compute_of_running_ones(client_for, data_scientist, settings):
    settings.STEWARD_WORKSPACE_QUOTA = {"workspaces": 2, "cpu": "2", "memory": "8Gi", "gpu": 0}
    client = client_for(data_scientist)
    first = create(client, resources={"cpu": "1500m"}).json()

    over = create(client, resources={"cpu": "1"})
    assert over.status_code == 400 and errors(over) == {"resources.cpu": "over_quota"}
    assert "1500m" in over.json()["detail"]  # says what is in use

    client.post(f"{URL}/{first['id']}/stop")  # a stopped workspace holds no compute ...
    assert create(client, resources={"cpu": "1"}).status_code == 201
    full = create(client)  # ... but still counts as a workspace
    assert full.status_code == 400 and errors(full) == {None: "workspace_quota"}

    started = client.post(f"{URL}/{first['id']}/start")  # 1500m + 1 CPU running would be over 2
    assert started.status_code == 400 and errors(started) == {"resources.cpu": "over_quota"}


def test_a_workspace_created_stopped_needs_no_compute_quota_until_started(
    client_for, data_scientist, settings, django_capture_on_commit_callbacks
):
    settings.STEWARD_WORKSPACE_QUOTA = {"workspaces": 2, "cpu": "1", "memory": "8Gi", "gpu": 0}
    client = client_for(data_scientist)

    with django_capture_on_commit_callbacks() as queued:
        res = create(client, resources={"cpu": "2"}, start=False)

    assert res.status_code == 201 and queued == []  # nothing to do for the reconciler
    assert (res.json()["state"], res.json()["desired_state"]) == ("stopped", "stopped")
    started = client.post(f"{URL}/{res.json()['id']}/start")
    assert started.status_code == 400 and errors(started) == {"resources.cpu": "over_quota"}


def test_per_user_quota_overrides(client_for, data_scientist, settings):
    settings.STEWARD_WORKSPACE_USER_QUOTAS = {"dana": {"cpu": "32", "memory": "128Gi"}}

    assert create(client_for(data_scientist), resources={"cpu": "16", "memory": "64Gi"}).status_code == 201


def test_only_the_owner_project_members_and_admins_see_a_workspace(
    client_for, data_scientist, other_scientist, admin_user, data_steward
):
    project = Project.objects.create(name="churn")
    project.members.add(data_scientist, other_scientist)
    mine = create(client_for(data_scientist)).json()
    shared = create(client_for(data_scientist), project="churn").json()
    outsider = make_user("ursula", Role.DATA_SCIENTIST)

    def seen(user: User) -> set[str]:
        return {w["id"] for w in client_for(user).get(URL).json()["results"]}

    assert seen(data_scientist) == {mine["id"], shared["id"]}
    assert seen(other_scientist) == {shared["id"]}
    assert seen(admin_user) == {mine["id"], shared["id"]}
    assert seen(outsider) == seen(data_steward) == set()
    assert client_for(other_scientist).get(f"{URL}/{shared['id']}").json()["project"] == "churn"
    for user in (outsider, data_steward, other_scientist):
        assert client_for(user).get(f"{URL}/{mine['id']}").status_code == 404
        assert client_for(user).post(f"{URL}/{mine['id']}/stop").status_code == 404
        assert client_for(user).delete(f"{URL}/{mine['id']}").status_code == 404
    # A project member sees the project's workspace but does not change it.
    assert client_for(other_scientist).post(f"{URL}/{shared['id']}/stop").status_code == 403
    assert client_for(admin_user).post(f"{URL}/{mine['id']}/stop").status_code == 202
    assert client_for(None).get(URL).status_code in (401, 403)


def test_project_membership_is_needed_to_create_in_a_project(client_for, data_scientist):
    Project.objects.create(name="churn")

    res = create(client_for(data_scientist), project="churn")

    assert res.status_code == 400 and errors(res) == {"project": "unknown_project"}


def test_stop_start_and_delete_are_requests_recorded_as_events(client_for, data_scientist, grant, orders):
    (mine,) = grant(data_scientist, orders)
    client = client_for(data_scientist)
    created = create(client, datasets=[str(orders.pk)]).json()
    url = f"{URL}/{created['id']}"

    stopped = client.post(f"{url}/stop")
    again = client.post(f"{url}/stop")
    started = client.post(f"{url}/start")
    deleted = client.delete(url)

    assert [r.status_code for r in (stopped, again, started, deleted)] == [202] * 4
    assert (stopped.json()["desired_state"], started.json()["desired_state"]) == ("stopped", "running")
    assert deleted.json()["desired_state"] == "deleted"
    events = WorkspaceEvent.objects.filter(workspace_id=created["id"]).order_by("at", "id")
    assert [(e.kind, e.message, e.actor) for e in events][1:] == [
        ("request", "stop requested", "dana"),
        ("request", "start requested", "dana"),
        ("request", "delete requested", "dana"),
    ]
    own = Grant.objects.get(workspace_id=created["id"])
    assert own.revoked_at is not None and own.revoke_reason.startswith("workspace ")
    assert Grant.objects.get(pk=mine.pk).revoked_at is None  # the owner's grant is untouched
    assert client.post(f"{url}/start").status_code == 409
    # Listed until the reconciler has removed it (then only with ?state=deleted).
    assert [w["desired_state"] for w in client.get(URL).json()["results"]] == ["deleted"]


def test_list_has_a_query_ceiling(client_for, data_scientist, grant, make_dataset, django_assert_max_num_queries):
    datasets = [make_dataset(f"sales.public.t{i}") for i in range(3)]
    grant(data_scientist, *datasets)
    client = client_for(data_scientist)
    for _ in range(5):
        create(client, datasets=[str(d.pk) for d in datasets], resources={"cpu": "100m", "memory": "256Mi"})

    with django_assert_max_num_queries(10):
        res = client.get(URL)

    assert len(res.json()["results"]) == 5
    assert all(len(w["datasets"]) == 3 and len(w["events"]) == 1 for w in res.json()["results"])


def test_templates_are_listed(client_for, data_scientist):
    res = client_for(data_scientist).get("/api/v1/workspace-templates")

    assert [t["name"] for t in res.json()] == ["jupyter-cpu", "jupyter-gpu", "vscode"]
    assert res.json()[1]["resources"] == {"cpu": "4", "memory": "16Gi", "gpu": 1}
