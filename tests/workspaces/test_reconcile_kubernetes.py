"""End to end on the kubernetes connector against the real kube-apiserver (scripts/services/kube.sh).

Each test runs with its own namespace prefix and owner, so it never sees (or cleans up) anyone else's
workspaces; its namespaces are removed afterwards. No controller runs: Notebooks stay ``provisioning``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.utils import timezone

from catalog import services as catalog
from connectors.workspaces import get_connector
from connectors.workspaces.kubernetes_manifests import credential_key
from governance.models import Grant
from steward.errors import BackendUnavailable
from steward.identity import Role
from tests.conftest import make_user
from tests.connectors.test_kubernetes_workspaces import LIMITS, QUOTA, Cluster
from workspaces.models import Template, Workspace, WorkspaceEvent
from workspaces.services import workspace_reconcile, workspaces_reconcile_due

URL = "/api/v1/workspaces"
NS = "postgres://warehouse:5432"


@pytest.fixture(scope="module")
def cluster(kubeconfig: str) -> Cluster:
    return Cluster(kubeconfig)


@pytest.fixture
def prefix(settings, kubeconfig: str, cluster: Cluster) -> Iterator[str]:
    """Steward on the kubernetes connector with a namespace prefix of this test's own."""
    chosen = f"w{uuid.uuid4().hex[:8]}-"
    settings.STEWARD_WORKSPACE_CONNECTOR = "kubernetes"
    settings.STEWARD_WORKSPACE_OPTIONS = {
        "kubeconfig": kubeconfig,
        "namespace_prefix": chosen,
        "url_template": "https://kubeflow.example.org/notebook/{namespace}/{name}/",
        "quota": QUOTA,
        "limits": LIMITS,
        "storage": "1Gi",
        "timeout": 5,
    }
    yield chosen
    for ns in cluster.core.list_namespace().items:
        if ns.metadata.name.startswith(chosen):
            cluster.remove_namespace(ns.metadata.name)


@pytest.fixture
def owner(db) -> User:
    return make_user(f"kw{uuid.uuid4().hex[:8]}", Role.DATA_SCIENTIST)


@pytest.fixture
def datasets(make_dataset):
    return make_dataset("sales.public.orders"), make_dataset("crm.public.customers")


def namespace(prefix: str, user: User) -> str:
    return f"{prefix}u-{user.username}"


def create(call: Any, user: User, datasets: Any, **body: Any) -> dict[str, Any]:
    res = call(user, "post", URL, {"template": "jupyter-cpu", "datasets": [str(d.pk) for d in datasets], **body})
    assert res.status_code == 201, res.content
    return call(user, "get", f"{URL}/{res.json()['id']}").json()


def keys(cluster: Cluster, prefix: str, user: User, workspace_id: str) -> dict[str, dict]:
    return cluster.secret_data(namespace(prefix, user), uuid.UUID(workspace_id))


def test_reconcile_applies_a_notebook_and_a_secret_with_exactly_the_granted_datasets(
    prefix, cluster, call, owner, grant, datasets
):
    grant(owner, *datasets)

    body = create(call, owner, datasets, resources={"cpu": "2", "memory": "4Gi"})

    assert body["state"] == "provisioning"  # stored; no kubelet here runs the pod
    ns = namespace(prefix, owner)
    assert body["url"] == f"https://kubeflow.example.org/notebook/{ns}/ws-{body['id']}/"
    notebook = cluster.notebook(ns, uuid.UUID(body["id"]))
    container = notebook["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "kubeflownotebookswg/jupyter-scipy:v1.9.2"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    own = {g.dataset.name: g for g in Grant.objects.filter(workspace_id=body["id"])}
    secret = keys(cluster, prefix, owner, body["id"])
    assert secret == {
        credential_key(NS, name): {
            "dataset": {"namespace": NS, "name": name},
            "grant_id": str(own[name].pk),
            "valid_until": own[name].valid_until.isoformat(),
            "credentials": secret[credential_key(NS, name)]["credentials"],
        }
        for name in ("sales.public.orders", "crm.public.customers")
    }
    assert all(doc["credentials"]["type"] == "steward-grant-token" for doc in secret.values())


def test_revoking_a_grant_removes_its_key_from_the_secret(prefix, cluster, call, owner, grant, datasets):
    mine = {g.dataset.name: g for g in grant(owner, *datasets)}
    body = create(call, owner, datasets)

    call(owner, "post", f"/api/v1/grants/{mine['crm.public.customers'].pk}/revoke", {"reason": "done"})

    assert set(keys(cluster, prefix, owner, body["id"])) == {credential_key(NS, "sales.public.orders")}


def test_suspension_by_reclassification_removes_the_key_too(
    prefix, cluster, call, owner, grant, datasets, data_steward, django_capture_on_commit_callbacks
):
    grant(owner, *datasets)
    body = create(call, owner, datasets)

    with django_capture_on_commit_callbacks(execute=True):  # pii.email implies C3: the C1 grants are suspended
        catalog.dataset_tag_add(actor=data_steward, dataset=datasets[0], key="pii.email")

    assert set(keys(cluster, prefix, owner, body["id"])) == {credential_key(NS, "crm.public.customers")}
    link = Workspace.objects.get(pk=body["id"]).datasets.get(dataset=datasets[0])
    assert not link.mounted and "suspended" in link.unmounted_reason


def test_an_unreachable_cluster_is_shown_retried_with_backoff_and_nothing_is_duplicated(
    prefix, cluster, call, owner, grant, datasets, settings, kubeconfig, tmp_path
):
    grant(owner, *datasets)
    good = dict(settings.STEWARD_WORKSPACE_OPTIONS)
    broken = yaml.safe_load(Path(kubeconfig).read_text())
    broken["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(broken))
    settings.STEWARD_WORKSPACE_OPTIONS = {**good, "kubeconfig": str(tmp_path / "kubeconfig"), "timeout": 2}

    body = create(call, owner, datasets)  # the reconcile after commit cannot reach the cluster

    assert body["state"] == "requested"
    assert body["attempts"] == 1 and "unreachable" in body["message"] and body["retry_at"]
    workspace = Workspace.objects.get(pk=body["id"])
    first_retry = workspace.retry_at
    with pytest.raises(BackendUnavailable):
        workspace_reconcile(workspace_id=workspace.pk)
    workspace.refresh_from_db()
    assert (workspace.state, workspace.attempts) == ("requested", 2)
    assert (workspace.retry_at - first_retry) >= timedelta(seconds=9)  # 10 s, then 20 s after the second
    (error,) = WorkspaceEvent.objects.filter(workspace=workspace, kind="error")
    assert error.repeats == 2 and "Connection refused" in error.message
    assert workspaces_reconcile_due(dispatch=lambda pk: pytest.fail("backing off")).due == 0

    settings.STEWARD_WORKSPACE_OPTIONS = good  # the cluster is back
    later = workspace.retry_at + timedelta(seconds=1)
    report = workspaces_reconcile_due(now=later, dispatch=lambda pk: workspace_reconcile(workspace_id=pk, now=later))

    assert report.due == 1
    workspace.refresh_from_db()
    assert (workspace.state, workspace.attempts, workspace.retry_at) == ("provisioning", 0, None)
    ns = namespace(prefix, owner)
    selector = f"steward.io/workspace-id={workspace.pk}"
    versions = cluster.versions(ns, workspace.pk, ns)
    workspace_reconcile(workspace_id=workspace.pk, now=later)  # and once more: nothing changes
    assert cluster.versions(ns, workspace.pk, ns) == versions
    notebooks = cluster.custom.list_namespaced_custom_object("kubeflow.org", "v1", ns, "notebooks")["items"]
    assert [n["metadata"]["name"] for n in notebooks] == [f"ws-{workspace.pk}"]
    assert len(cluster.core.list_namespaced_secret(ns, label_selector=selector).items) == 1
    assert len(cluster.core.list_namespaced_persistent_volume_claim(ns, label_selector=selector).items) == 1
    assert len(set(keys(cluster, prefix, owner, body["id"]))) == 2


def test_a_422_fails_the_workspace_with_the_message_until_it_is_started_again(prefix, call, owner):
    Template.objects.create(name="broken", title="No image", image="", cpu_millis=500, memory_bytes=2**30)

    body = create(call, owner, [], template="broken")

    assert body["state"] == "failed"
    assert "422" in body["message"] and "template.image" in body["message"]
    assert [e["to_state"] for e in body["events"] if e["kind"] == "transition"] == ["failed"]
    assert workspaces_reconcile_due(dispatch=lambda pk: pytest.fail("not retried")).due == 0
    workspace_reconcile(workspace_id=uuid.UUID(body["id"]))  # nothing new either
    assert WorkspaceEvent.objects.filter(workspace_id=body["id"], to_state="failed").count() == 1

    call(owner, "post", f"{URL}/{body['id']}/start")  # the owner asks again: tried again, fails again

    after = call(owner, "get", f"{URL}/{body['id']}").json()
    assert after["state"] == "failed"
    assert [(e["kind"], e["message"][:20]) for e in after["events"][:2]] == [
        ("error", body["message"][:20]),
        ("request", "start requested"),
    ]


def test_delete_removes_the_notebook_and_the_secret(prefix, cluster, call, owner, grant, datasets):
    grant(owner, *datasets)
    body = create(call, owner, datasets)
    ns = namespace(prefix, owner)

    call(owner, "delete", f"{URL}/{body['id']}")

    assert call(owner, "get", f"{URL}/{body['id']}").json()["state"] == "deleted"
    assert cluster.missing(lambda: cluster.notebook(ns, uuid.UUID(body["id"])))
    assert cluster.missing(lambda: cluster.core.read_namespaced_secret(f"ws-{body['id']}-credentials", ns))
    assert get_connector().status(uuid.UUID(body["id"])).state == "deleted"


def test_the_periodic_pass_only_touches_its_own_prefix(prefix, cluster, call, owner, kubeconfig):
    from connectors.workspaces.base import TemplateSpec, WorkspaceSpec
    from connectors.workspaces.kubernetes import KubernetesWorkspaceConnector

    other_prefix = f"x{uuid.uuid4().hex[:8]}-"
    other = KubernetesWorkspaceConnector(kubeconfig=kubeconfig, namespace_prefix=other_prefix)
    stranger = WorkspaceSpec(id=uuid.uuid4(), owner="someone", template=TemplateSpec(name="t", image="img:1"))
    other.apply(stranger)
    try:
        report = workspaces_reconcile_due()

        assert report.orphans_removed == 0
        assert other.status(stranger.id).state == "provisioning"
    finally:
        cluster.remove_namespace(f"{other_prefix}u-someone")


def test_during_an_outage_the_periodic_pass_sends_only_real_work(
    prefix, call, owner, grant, datasets, settings, kubeconfig, tmp_path
):
    grant(owner, *datasets)
    body = create(call, owner, datasets)
    broken = yaml.safe_load(Path(kubeconfig).read_text())
    broken["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(broken))
    settings.STEWARD_WORKSPACE_OPTIONS = {
        **settings.STEWARD_WORKSPACE_OPTIONS,
        "kubeconfig": str(tmp_path / "kubeconfig"),
        "timeout": 2,
    }

    quiet = workspaces_reconcile_due(dispatch=lambda pk: pytest.fail("nothing to do"))

    assert (quiet.reachable, quiet.due) == (False, 0)
    soon = timezone.now() + timedelta(minutes=5)
    Grant.objects.filter(dataset=datasets[1]).update(valid_until=soon)  # the owner's and the workspace's
    later = soon + timedelta(seconds=1)
    due: list[uuid.UUID] = []
    assert workspaces_reconcile_due(now=later, dispatch=due.append).due == 1
    with pytest.raises(BackendUnavailable):
        workspace_reconcile(workspace_id=due[0], now=later)
    workspace = Workspace.objects.get(pk=body["id"])
    assert workspace.state == "provisioning" and "unreachable" in workspace.message and workspace.attempts == 1
