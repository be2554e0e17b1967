"""The ``kubernetes`` workspace connector against the real kube-apiserver (scripts/services/kube.sh).

Each test uses its own owner, so its own namespace; what the connector wrote is read back with the official
client, as the API server stored it. No controller runs: Notebooks stay stored objects (no pods), which is
all the connector depends on. Cleanup deletes the namespace's objects and then the namespace itself
(finalized by hand: without a controller-manager it would stay Terminating).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from django.test import override_settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from connectors.workspaces import get_connector
from connectors.workspaces.base import (
    DataMount,
    Resources,
    TemplateSpec,
    WorkspaceConnectorError,
    WorkspaceSpec,
    WorkspaceState,
)
from connectors.workspaces.kubernetes import FIELD_MANAGER, KubernetesWorkspaceConnector
from connectors.workspaces.kubernetes_manifests import STOP_ANNOTATION, credential_key
from steward.errors import BackendUnavailable

PREFIX = "stest-"
QUOTA = {"requests.cpu": "8", "requests.memory": "32Gi", "persistentvolumeclaims": "5"}
LIMITS = {"max": {"cpu": "4", "memory": "16Gi"}, "default": {"cpu": "1", "memory": "2Gi"}}
JUPYTER = TemplateSpec(
    name="jupyter-cpu",
    image="quay.io/jupyter/scipy-notebook:2025-06-02",
    command=["start-notebook.py"],
    default_resources=Resources(cpu="1", memory="2Gi"),
)
#: apply = 7 namespace objects + the dry-run Pod + PVC + Secret + Notebook.
CALLS_PER_APPLY = 11


def mount(name: str, **credentials: str) -> DataMount:
    return DataMount(
        dataset_namespace="postgres://warehouse:5432",
        dataset_name=name,
        grant_id=uuid.uuid4(),
        credentials=credentials or {"user": "ws_reader", "password": f"pw-{name}"},
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
    )


class Cluster:
    """The official client's typed APIs for reading back what the API server stored."""

    def __init__(self, kubeconfig: str) -> None:
        api_client = k8s_config.new_client_from_config(config_file=kubeconfig, persist_config=False)
        self.core = k8s.CoreV1Api(api_client)
        self.networking = k8s.NetworkingV1Api(api_client)
        self.rbac = k8s.RbacAuthorizationV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)

    def notebook(self, namespace: str, workspace_id: uuid.UUID) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            "kubeflow.org", "v1", namespace, "notebooks", f"ws-{workspace_id}"
        )

    def profile(self, name: str) -> dict[str, Any]:
        return self.custom.get_cluster_custom_object("kubeflow.org", "v1", "profiles", name)

    def secret_data(self, namespace: str, workspace_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        secret = self.core.read_namespaced_secret(f"ws-{workspace_id}-credentials", namespace)
        return {key: json.loads(base64.b64decode(value)) for key, value in (secret.data or {}).items()}

    def versions(self, namespace: str, workspace_id: uuid.UUID, profile: str) -> dict[str, str]:
        """resourceVersion of every object a workspace's apply writes."""
        name = f"ws-{workspace_id}"
        objects = {
            "namespace": self.core.read_namespace(namespace),
            "quota": self.core.read_namespaced_resource_quota("steward-quota", namespace),
            "limits": self.core.read_namespaced_limit_range("steward-limits", namespace),
            "policy": self.networking.read_namespaced_network_policy("steward-ingress-from-gateway", namespace),
            "account": self.core.read_namespaced_service_account("steward-workspace", namespace),
            "pvc": self.core.read_namespaced_persistent_volume_claim(f"{name}-home", namespace),
            "secret": self.core.read_namespaced_secret(f"{name}-credentials", namespace),
        }
        found = {key: obj.metadata.resource_version for key, obj in objects.items()}
        bindings = self.rbac.list_namespaced_role_binding(namespace).items
        found |= {f"binding {b.metadata.name}": b.metadata.resource_version for b in bindings}
        found["profile"] = self.profile(profile)["metadata"]["resourceVersion"]
        found["notebook"] = self.notebook(namespace, workspace_id)["metadata"]["resourceVersion"]
        return found

    def missing(self, read: Callable[[], Any]) -> bool:
        try:
            read()
        except ApiException as exc:
            return exc.status == 404
        return False

    def remove_namespace(self, namespace: str) -> None:
        """Delete everything in ``namespace``, its Profile, then the namespace (finalized by hand)."""
        group = ("kubeflow.org", "v1")
        # Without controllers, finalizers never go: drop the PVCs' (pvc-protection) so they can be deleted.
        for pvc in self.core.list_namespaced_persistent_volume_claim(namespace).items:
            self.core.patch_namespaced_persistent_volume_claim(
                pvc.metadata.name, namespace, {"metadata": {"finalizers": None}}
            )
        for call in (
            lambda: self.custom.delete_collection_namespaced_custom_object(*group, namespace, "notebooks"),
            lambda: self.core.delete_collection_namespaced_secret(namespace),
            lambda: self.core.delete_collection_namespaced_persistent_volume_claim(namespace),
            lambda: self.core.delete_collection_namespaced_resource_quota(namespace),
            lambda: self.core.delete_collection_namespaced_limit_range(namespace),
            lambda: self.core.delete_collection_namespaced_service_account(namespace),
            lambda: self.networking.delete_collection_namespaced_network_policy(namespace),
            lambda: self.rbac.delete_collection_namespaced_role_binding(namespace),
            lambda: self.custom.delete_cluster_custom_object(*group, "profiles", namespace),
            lambda: self.core.delete_namespace(namespace),
            lambda: self.core.replace_namespace_finalize(
                namespace, {"metadata": {"name": namespace}, "spec": {"finalizers": []}}
            ),
        ):
            try:
                call()
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture(scope="session")
def cluster(kubeconfig: str) -> Cluster:
    return Cluster(kubeconfig)


@pytest.fixture
def connector(kubeconfig: str) -> KubernetesWorkspaceConnector:
    return KubernetesWorkspaceConnector(
        kubeconfig=kubeconfig,
        namespace_prefix=PREFIX,
        url_template="https://kubeflow.example.org/notebook/{namespace}/{name}/",
        gateway_namespace="istio-system",
        user_cluster_role="kubeflow-edit",
        quota=QUOTA,
        limits=LIMITS,
        storage="5Gi",
        cache_seconds=0,  # every apply sends everything (the cache has its own test)
    )


@pytest.fixture
def owner(cluster: Cluster) -> Iterator[str]:
    """A fresh user for this test (so a fresh namespace); the namespace is removed afterwards."""
    name = f"user-{uuid.uuid4().hex[:10]}"
    yield name
    cluster.remove_namespace(f"{PREFIX}u-{name}")


def workspace(owner: str, *mounts: DataMount, **changes: Any) -> WorkspaceSpec:
    return WorkspaceSpec(id=uuid.uuid4(), owner=owner, template=JUPYTER, mounts=list(mounts), **changes)


def test_apply_stores_every_object_of_the_workspace(connector, cluster, owner):
    orders, customers = mount("sales.public.orders"), mount("crm.customers", token="t-123")
    spec = workspace(owner, orders, customers, resources=Resources(cpu="2", memory="4Gi", gpu=1))
    ns = f"{PREFIX}u-{owner}"

    status = connector.apply(spec)

    assert status.state == WorkspaceState.PROVISIONING  # stored; no controller runs pods here
    assert status.url == f"https://kubeflow.example.org/notebook/{ns}/ws-{spec.id}/"
    namespace = cluster.core.read_namespace(ns)
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "steward"
    assert namespace.metadata.labels["steward.io/owner"] == owner
    assert namespace.metadata.annotations["owner"] == owner  # Kubeflow's profile controller checks it
    assert cluster.core.read_namespaced_resource_quota("steward-quota", ns).spec.hard == QUOTA
    limit = cluster.core.read_namespaced_limit_range("steward-limits", ns).spec.limits[0]
    assert (limit.type, limit.max, limit.default) == ("Container", LIMITS["max"], LIMITS["default"])
    policy = cluster.networking.read_namespaced_network_policy("steward-ingress-from-gateway", ns).spec
    assert policy.policy_types == ["Ingress"]  # egress not restricted
    assert policy.pod_selector.match_labels is None  # every pod
    assert [peer.namespace_selector.match_labels for peer in policy.ingress[0]._from] == [
        {"kubernetes.io/metadata.name": "istio-system"}
    ]
    account = cluster.core.read_namespaced_service_account("steward-workspace", ns)
    assert account.automount_service_account_token is False
    binding = cluster.rbac.read_namespaced_role_binding(f"steward-user-{owner}", ns)
    assert (binding.role_ref.kind, binding.role_ref.name) == ("ClusterRole", "kubeflow-edit")
    assert [(s.kind, s.name) for s in binding.subjects] == [("User", owner)]
    assert cluster.profile(ns)["spec"]["owner"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "User",
        "name": owner,
    }
    pvc = cluster.core.read_namespaced_persistent_volume_claim(f"ws-{spec.id}-home", ns)
    assert pvc.spec.resources.requests == {"storage": "5Gi"}
    secret = cluster.secret_data(ns, spec.id)
    orders_key = credential_key("postgres://warehouse:5432", "sales.public.orders")
    assert set(secret) == {orders_key, credential_key("postgres://warehouse:5432", "crm.customers")}
    assert secret[orders_key] == {
        "dataset": {"namespace": "postgres://warehouse:5432", "name": "sales.public.orders"},
        "grant_id": str(orders.grant_id),
        "valid_until": "2031-01-01T00:00:00+00:00",
        "credentials": {"user": "ws_reader", "password": "pw-sales.public.orders"},
    }

    notebook = cluster.notebook(ns, spec.id)
    assert notebook["metadata"]["labels"]["steward.io/workspace-id"] == str(spec.id)
    assert notebook["metadata"]["annotations"] == {"steward.io/owner": owner}
    pod = notebook["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == f"ws-{spec.id}"  # Kubeflow looks the container up by the Notebook's name
    assert (container["image"], container["command"]) == (JUPYTER.image, ["start-notebook.py"])
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]} == {
        "home": "/home/jovyan",
        "credentials": "/var/run/steward/datasets",
    }
    assert pod["volumes"] == [
        {"name": "home", "persistentVolumeClaim": {"claimName": f"ws-{spec.id}-home"}},
        {"name": "credentials", "secret": {"secretName": f"ws-{spec.id}-credentials", "defaultMode": 0o440}},
    ]
    assert pod["serviceAccountName"] == "steward-workspace"
    # Written by server-side apply, under Steward's field manager.
    managers = {(m["manager"], m["operation"]) for m in notebook["metadata"]["managedFields"]}
    assert managers == {(FIELD_MANAGER, "Apply")}


def test_second_apply_changes_nothing(connector, cluster, owner):
    spec = workspace(owner, mount("sales.public.orders"))
    ns = f"{PREFIX}u-{owner}"
    connector.apply(spec)
    first = cluster.versions(ns, spec.id, ns)
    calls = connector.api_calls

    connector.apply(spec)

    assert connector.api_calls - calls == CALLS_PER_APPLY
    second = cluster.versions(ns, spec.id, ns)
    # XXX The API server rewrites a PVC once on its first update whatever the patch: create stored an empty
    # status, the update stores the status as read back, defaulted (phase Pending). Nothing else changes.
    assert {key for key in first if first[key] != second[key]} <= {"pvc"}
    connector.apply(spec)
    assert cluster.versions(ns, spec.id, ns) == second


def test_removing_a_mount_removes_its_key_from_the_secret(connector, cluster, owner):
    orders, customers = mount("sales.public.orders"), mount("crm.customers")
    spec = workspace(owner, orders, customers)
    ns = f"{PREFIX}u-{owner}"
    connector.apply(spec)
    notebook_version = cluster.notebook(ns, spec.id)["metadata"]["resourceVersion"]

    connector.apply(WorkspaceSpec(id=spec.id, owner=owner, template=JUPYTER, mounts=[customers]))

    assert set(cluster.secret_data(ns, spec.id)) == {credential_key(customers.dataset_namespace, "crm.customers")}
    assert cluster.notebook(ns, spec.id)["metadata"]["resourceVersion"] == notebook_version

    connector.apply(WorkspaceSpec(id=spec.id, owner=owner, template=JUPYTER, mounts=[]))

    assert cluster.secret_data(ns, spec.id) == {}


def test_recently_applied_namespace_objects_and_pod_templates_are_not_sent_again(kubeconfig, cluster, owner):
    cached = KubernetesWorkspaceConnector(
        kubeconfig=kubeconfig, namespace_prefix=PREFIX, quota=QUOTA, limits=LIMITS, storage="5Gi"
    )
    orders, customers = mount("sales.public.orders"), mount("crm.customers")
    first, second = workspace(owner, orders, customers), workspace(owner)
    ns = f"{PREFIX}u-{owner}"

    cached.apply(first)
    assert cached.api_calls == CALLS_PER_APPLY
    # Same namespace, and a pod template of the same shape (only the workspace id differs): its 7 objects are not
    # sent again, nor is the pod template validated again: PVC, Secret, Notebook.
    cached.apply(second)
    assert cached.api_calls == CALLS_PER_APPLY + 3
    assert cluster.notebook(ns, second.id)["metadata"]["name"] == f"ws-{second.id}"
    cached.apply(WorkspaceSpec(id=first.id, owner=owner, template=JUPYTER, mounts=[customers]))
    assert cached.api_calls == CALLS_PER_APPLY + 3 + 2  # Secret, Notebook (the PVC is as applied)
    assert set(cluster.secret_data(ns, first.id)) == {credential_key(customers.dataset_namespace, "crm.customers")}
    bigger = WorkspaceSpec(id=uuid.uuid4(), owner=owner, template=JUPYTER, resources=Resources("3", "1Gi"))
    cached.apply(bigger)  # another shape: validated (and refused by the LimitRange if over it)
    assert cached.api_calls == CALLS_PER_APPLY + 3 + 2 + 4

    cluster.remove_namespace(ns)  # deleted behind the connector's back: the 404 makes it apply everything
    assert cached.apply(first).state == WorkspaceState.PROVISIONING

    # The refused Secret, then the namespace's 7 objects, PVC, Secret, Notebook (the pod template is known valid).
    assert cached.api_calls == CALLS_PER_APPLY + 3 + 2 + 4 + 1 + 7 + 3
    assert cluster.core.read_namespaced_resource_quota("steward-quota", ns).spec.hard == QUOTA
    assert set(cluster.secret_data(ns, first.id)) == {
        credential_key(orders.dataset_namespace, "sales.public.orders"),
        credential_key(customers.dataset_namespace, "crm.customers"),
    }


def test_stop_sets_the_kubeflow_annotation_and_apply_starts_again(connector, cluster, owner):
    spec = workspace(owner)
    ns = f"{PREFIX}u-{owner}"
    connector.apply(spec)

    status = connector.stop(spec.id)

    assert status.state == WorkspaceState.STOPPED
    stored = cluster.notebook(ns, spec.id)
    stamp = stored["metadata"]["annotations"][STOP_ANNOTATION]
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")  # Kubeflow's RFC 3339 form
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == JUPYTER.image  # spec untouched
    assert connector.stop(spec.id).state == WorkspaceState.STOPPED
    assert cluster.notebook(ns, spec.id)["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert connector.status(spec.id).state == WorkspaceState.STOPPED

    assert connector.apply(spec).state == WorkspaceState.PROVISIONING

    assert STOP_ANNOTATION not in (cluster.notebook(ns, spec.id)["metadata"].get("annotations") or {})


def test_delete_removes_the_workspace_and_keeps_the_namespace(connector, cluster, owner):
    spec, other = workspace(owner, mount("sales.public.orders")), workspace(owner)
    ns = f"{PREFIX}u-{owner}"
    connector.apply(spec)
    connector.apply(other)

    connector.delete(spec.id)

    name = f"ws-{spec.id}"
    assert cluster.missing(lambda: cluster.notebook(ns, spec.id))
    assert cluster.missing(lambda: cluster.core.read_namespaced_secret(f"{name}-credentials", ns))
    # Deleted, but kept by its pvc-protection finalizer until no pod uses it (no controller runs here).
    pvc = cluster.core.read_namespaced_persistent_volume_claim(f"{name}-home", ns)
    assert pvc.metadata.deletion_timestamp is not None
    assert connector.status(spec.id).state == WorkspaceState.DELETED
    assert connector.status(other.id).state == WorkspaceState.PROVISIONING
    assert cluster.core.read_namespaced_resource_quota("steward-quota", ns).spec.hard == QUOTA
    connector.delete(spec.id)  # deleting again is fine


def test_list_managed_finds_every_workspace(connector, owner):
    first, second = workspace(owner), workspace(owner)
    connector.apply(first)
    connector.apply(second)
    connector.stop(second.id)

    managed = connector.list_managed()

    assert managed[first.id].state == WorkspaceState.PROVISIONING
    assert managed[second.id].state == WorkspaceState.STOPPED


def test_project_workspaces_share_the_project_namespace(connector, cluster, owner):
    project = f"churn-{uuid.uuid4().hex[:8]}"
    colleague = f"user-{uuid.uuid4().hex[:10]}"
    ns = f"{PREFIX}p-{project}"
    try:
        connector.apply(workspace(owner, project=project))
        shared_before = cluster.core.read_namespace(ns)

        connector.apply(workspace(colleague, project=project))

        shared = cluster.core.read_namespace(ns)
        assert shared.metadata.resource_version == shared_before.metadata.resource_version
        assert shared.metadata.labels == {
            "app.kubernetes.io/managed-by": "steward",
            "steward.io/project": project,  # not the owner of whichever workspace was applied last
            "kubernetes.io/metadata.name": ns,  # the API server's own
        }
        assert shared.metadata.annotations["owner"] == project
        assert cluster.profile(ns)["spec"]["owner"]["kind"] == "Group"
        for user in (owner, colleague):
            binding = cluster.rbac.read_namespaced_role_binding(f"steward-user-{user}", ns)
            assert [(s.kind, s.name) for s in binding.subjects] == [("User", user)]
    finally:
        cluster.remove_namespace(ns)


def test_malformed_cpu_is_refused_naming_the_field(connector, cluster, owner):
    spec = workspace(owner, mount("sales.public.orders"), resources=Resources(cpu="lots", memory="1Gi"))

    with pytest.raises(WorkspaceConnectorError) as caught:
        connector.apply(spec)

    error = caught.value
    assert error.target_status == 422
    assert "spec.template.spec.containers[0].resources.requests.cpu" in error.message
    assert {p.field for p in error.problems} == {"resources.cpu"}
    ns = f"{PREFIX}u-{owner}"
    assert cluster.missing(lambda: cluster.notebook(ns, spec.id))  # nothing of the workspace was written
    assert cluster.missing(lambda: cluster.core.read_namespaced_secret(f"ws-{spec.id}-credentials", ns))


def test_pod_the_api_server_rejects_is_refused_before_anything_is_written(connector, cluster, owner):
    no_image = TemplateSpec(name="broken", image="", default_resources=Resources(cpu="1", memory="1Gi"))
    spec = WorkspaceSpec(id=uuid.uuid4(), owner=owner, template=no_image)

    with pytest.raises(WorkspaceConnectorError) as caught:
        connector.apply(spec)

    assert caught.value.target_status == 422
    assert [p.field for p in caught.value.problems] == ["template.image"]
    assert "spec.containers[0].image" in caught.value.problems[0].message
    assert cluster.missing(lambda: cluster.notebook(f"{PREFIX}u-{owner}", spec.id))


def test_resources_over_the_limit_range_are_refused_by_admission(connector, owner):
    spec = workspace(owner, resources=Resources(cpu="16", memory="1Gi"))

    with pytest.raises(WorkspaceConnectorError) as caught:
        connector.apply(spec)

    assert caught.value.target_status == 403
    assert "maximum cpu usage per Container is 4, but limit is 16" in caught.value.message
    assert [p.field for p in caught.value.problems] == ["resources.cpu"]


def test_unreachable_cluster_is_backend_unavailable(kubeconfig, tmp_path):
    config = yaml.safe_load(open(kubeconfig).read())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    connector = KubernetesWorkspaceConnector(kubeconfig=str(broken), timeout=2)

    with pytest.raises(BackendUnavailable, match=r"https://127.0.0.1:1 is unreachable .*Connection refused"):
        connector.apply(workspace("nobody"))
    with pytest.raises(BackendUnavailable, match="unreachable"):
        connector.ping()


def test_missing_kubeconfig_is_backend_unavailable(tmp_path):
    connector = KubernetesWorkspaceConnector(kubeconfig=str(tmp_path / "absent"))

    with pytest.raises(BackendUnavailable, match="cannot load the Kubernetes configuration"):
        connector.status(uuid.uuid4())


def test_settings_select_the_kubernetes_connector(kubeconfig):
    options = {"kubeconfig": kubeconfig, "namespace_prefix": PREFIX}
    with override_settings(STEWARD_WORKSPACE_CONNECTOR="kubernetes", STEWARD_WORKSPACE_OPTIONS=options):
        chosen = get_connector()
        assert isinstance(chosen, KubernetesWorkspaceConnector)
        chosen.ping()
        assert chosen.api_calls == 1


def test_concurrent_applies_in_a_new_namespace_send_its_objects_once(kubeconfig, cluster, owner):
    from concurrent.futures import ThreadPoolExecutor

    cached = KubernetesWorkspaceConnector(
        kubeconfig=kubeconfig, namespace_prefix=PREFIX, quota=QUOTA, limits=LIMITS, storage="5Gi"
    )
    specs = [workspace(owner) for _ in range(4)]

    with ThreadPoolExecutor(4) as pool:
        states = list(pool.map(cached.apply, specs))

    assert {s.state for s in states} == {WorkspaceState.PROVISIONING}
    # The first: 7 namespace objects, validation, PVC, Secret, Notebook; the others wait for it: 3 each.
    assert cached.api_calls == CALLS_PER_APPLY + 3 * 3
    assert all(cluster.notebook(f"{PREFIX}u-{owner}", s.id) for s in specs)


def test_list_managed_follows_changes_made_elsewhere_with_one_call(kubeconfig, connector, owner):
    watching = KubernetesWorkspaceConnector(kubeconfig=kubeconfig, namespace_prefix=PREFIX, quota=QUOTA, limits=LIMITS)
    first, second, third = workspace(owner), workspace(owner), workspace(owner)
    connector.apply(first)
    connector.apply(second)
    assert set(watching.list_managed()) >= {first.id, second.id}  # a whole list; the watch starts from it
    calls = watching.api_calls

    # Changed by another process meanwhile: a workspace stopped, one deleted, one added.
    connector.stop(first.id)
    connector.delete(second.id)
    connector.apply(third)
    managed = watching.list_managed()

    assert watching.api_calls - calls == 1  # the names the API server lists, to check the watch against
    assert managed[first.id].state == WorkspaceState.STOPPED
    assert second.id not in managed
    assert managed[third.id].state == WorkspaceState.PROVISIONING
    unwatched = KubernetesWorkspaceConnector(kubeconfig=kubeconfig, namespace_prefix=PREFIX, watch=False)
    assert unwatched.list_managed() == managed
