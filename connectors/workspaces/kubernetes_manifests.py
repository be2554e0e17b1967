"""Kubernetes objects for a workspace: pure functions from a ``WorkspaceSpec`` to manifests (dicts), no I/O.

Per namespace (one per owner, or per project; shared by that namespace's workspaces and kept when one of
them is deleted): ``Namespace`` (owner labels, and the ``owner`` annotation Kubeflow's profile controller
checks), ``ResourceQuota``, ``LimitRange``, ``NetworkPolicy`` (ingress only from the gateway namespace; egress
open), ``ServiceAccount`` (no token mounted), ``RoleBinding`` of the user to a ClusterRole, and a
cluster-scoped Kubeflow ``Profile`` named after the namespace.

Per workspace (named ``ws-<workspace id>``): ``PersistentVolumeClaim`` (home directory), ``Secret`` with one
key per mounted dataset (a JSON document: dataset, grant id, validity, credentials), and a Kubeflow
``Notebook`` whose pod template mounts both. Everything carries ``app.kubernetes.io/managed-by: steward``
and ``steward.io/owner``; workspace objects also ``steward.io/workspace-id``.

Manifests are deterministic (sorted, no timestamps), so applying the same spec twice is a no-op for the
API server. Names and label values are derived with ``slug``: lowercase DNS labels, with a hash suffix
whenever the original had to change, so two owners never share a namespace.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from connectors.workspaces.base import DataMount, WorkspaceSpec

__all__ = [
    "CREDENTIALS_DIR",
    "HOME_DIR",
    "ANNOTATION_OWNER",
    "LABEL_MANAGED_BY",
    "LABEL_OWNER",
    "LABEL_WORKSPACE",
    "MANAGED_BY",
    "STOP_ANNOTATION",
    "Layout",
    "credential_key",
    "slug",
]

MANAGED_BY = "steward"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_OWNER = "steward.io/owner"
LABEL_PROJECT = "steward.io/project"
LABEL_WORKSPACE = "steward.io/workspace-id"
LABEL_TEMPLATE = "steward.io/template"
ANNOTATION_OWNER = "steward.io/owner"
ANNOTATION_PROJECT = "steward.io/project"
ANNOTATION_GRANTS = "steward.io/grants"
#: Kubeflow's notebook controller scales a Notebook with this annotation to zero replicas.
STOP_ANNOTATION = "kubeflow-resource-stopped"
#: Kubeflow's profile controller adopts an existing namespace only when this annotation names the owner.
KUBEFLOW_OWNER_ANNOTATION = "owner"
HOME_DIR = "/home/jovyan"
CREDENTIALS_DIR = "/var/run/steward/datasets"
GPU_RESOURCE = "nvidia.com/gpu"

QUOTA_NAME = "steward-quota"
LIMIT_RANGE_NAME = "steward-limits"
NETWORK_POLICY_NAME = "steward-ingress-from-gateway"
SERVICE_ACCOUNT_NAME = "steward-workspace"

_DNS_LABEL_MAX = 63
_RBAC = "rbac.authorization.k8s.io"


def slug(text: str, max_len: int = 40) -> str:
    """A DNS-label-safe form of ``text``; a hash suffix is added when ``text`` had to change or was too long."""
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if clean == text and len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = clean[: max_len - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest


def credential_key(dataset_namespace: str, dataset_name: str) -> str:
    """The Secret key (and file name under ``CREDENTIALS_DIR``) holding one dataset's credentials."""
    digest = hashlib.sha256(f"{dataset_namespace}\n{dataset_name}".encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", dataset_name).strip("-.")[:100]
    return f"{readable}-{digest}.json" if readable else f"{digest}.json"


def _credential_document(mount: DataMount) -> bytes:
    return json.dumps(mount.document(), sort_keys=True, separators=(",", ":")).encode()


def workspace_name(workspace_id: UUID) -> str:
    """Name of the Notebook (and prefix of the workspace's other objects) for a workspace id."""
    return f"ws-{workspace_id}"


@dataclass(frozen=True)
class Layout:
    """Cluster-wide choices that shape the manifests (from ``STEWARD_WORKSPACE_OPTIONS``)."""

    namespace_prefix: str = "steward-"
    gateway_namespace: str = "istio-system"
    user_cluster_role: str = "edit"
    quota: dict[str, str] = field(default_factory=dict)
    limits: dict[str, dict[str, str]] = field(default_factory=dict)
    storage: str = "10Gi"
    storage_class: str | None = None

    # --- names --------------------------------------------------------------------------------------
    def namespace(self, spec: WorkspaceSpec) -> str:
        """``<prefix>u-<owner>`` for a personal workspace, ``<prefix>p-<project>`` for a project's."""
        room = _DNS_LABEL_MAX - len(self.namespace_prefix) - 2
        if spec.project:
            return f"{self.namespace_prefix}p-{slug(spec.project, room)}"
        return f"{self.namespace_prefix}u-{slug(spec.owner, room)}"

    # --- per namespace ------------------------------------------------------------------------------
    def namespace_objects(self, spec: WorkspaceSpec) -> list[dict[str, Any]]:
        """Namespace, ResourceQuota, LimitRange, NetworkPolicy, ServiceAccount, RoleBinding, Profile."""
        ns = self.namespace(spec)
        # Shared by the namespace's workspaces: labelled with the namespace's owner (the project, if any),
        # never with whoever applied last, so another member's workspace changes none of them.
        labels = self._labels(spec, scope="namespace")
        # Kubeflow's Profile owner: the user, or for a project namespace the project as a group.
        owner_subject = (
            {"apiGroup": _RBAC, "kind": "Group", "name": spec.project}
            if spec.project
            else {"apiGroup": _RBAC, "kind": "User", "name": spec.owner}
        )
        annotations = {KUBEFLOW_OWNER_ANNOTATION: owner_subject["name"]}
        annotations[ANNOTATION_PROJECT if spec.project else ANNOTATION_OWNER] = owner_subject["name"]
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels, "annotations": annotations},
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": self._meta(QUOTA_NAME, ns, labels),
                "spec": {"hard": dict(sorted(self.quota.items()))},
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": self._meta(LIMIT_RANGE_NAME, ns, labels),
                "spec": {"limits": [{"type": "Container", **{k: dict(v) for k, v in sorted(self.limits.items())}}]},
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self._meta(NETWORK_POLICY_NAME, ns, labels),
                "spec": {
                    # Every pod; only Ingress is listed, so egress stays open and ingress is denied except:
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": self.gateway_namespace}
                                    }
                                }
                            ]
                        }
                    ],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": self._meta(SERVICE_ACCOUNT_NAME, ns, labels),
                "automountServiceAccountToken": False,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": self._meta(f"steward-user-{slug(spec.owner)}", ns, self._labels(spec, scope="user")),
                "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": self.user_cluster_role},
                "subjects": [{"apiGroup": _RBAC, "kind": "User", "name": spec.owner}],
            },
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "Profile",
                "metadata": {"name": ns, "labels": labels},
                "spec": {"owner": owner_subject},
            },
        ]
        return objects

    # --- per workspace ------------------------------------------------------------------------------
    def pvc(self, spec: WorkspaceSpec) -> dict[str, Any]:
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": self.storage}}}
        if self.storage_class:
            claim["storageClassName"] = self.storage_class
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": self._meta(f"{workspace_name(spec.id)}-home", self.namespace(spec), self._labels(spec)),
            "spec": claim,
        }

    def secret(self, spec: WorkspaceSpec) -> dict[str, Any]:
        """The whole credentials Secret: applying it with fewer mounts removes the dropped keys."""
        data = {
            credential_key(m.dataset_namespace, m.dataset_name): base64.b64encode(_credential_document(m)).decode()
            for m in spec.mounts
        }
        meta = self._meta(f"{workspace_name(spec.id)}-credentials", self.namespace(spec), self._labels(spec))
        meta["annotations"] = {ANNOTATION_GRANTS: ",".join(sorted({str(m.grant_id) for m in spec.mounts}))}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "data": dict(sorted(data.items())),
        }

    def pod_template(self, spec: WorkspaceSpec) -> dict[str, Any]:
        """The Notebook's pod template: one container (named like the Notebook, as Kubeflow expects)."""
        name = workspace_name(spec.id)
        res = spec.effective_resources
        amounts = {"cpu": res.cpu, "memory": res.memory}
        limits = dict(amounts)
        if res.gpu:
            limits[GPU_RESOURCE] = str(res.gpu)
        container: dict[str, Any] = {
            "name": name,
            "image": spec.template.image,
            "env": [
                {"name": "STEWARD_CREDENTIALS_DIR", "value": CREDENTIALS_DIR},
                {"name": "STEWARD_WORKSPACE_ID", "value": str(spec.id)},
            ],
            "resources": {"requests": amounts, "limits": limits},
            "volumeMounts": [
                {"name": "home", "mountPath": HOME_DIR},
                {"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True},
            ],
        }
        if spec.template.command:
            container["command"] = list(spec.template.command)
        return {
            "metadata": {"labels": self._labels(spec)},
            "spec": {
                "serviceAccountName": SERVICE_ACCOUNT_NAME,
                "automountServiceAccountToken": False,
                "containers": [container],
                "volumes": [
                    {"name": "home", "persistentVolumeClaim": {"claimName": f"{name}-home"}},
                    {"name": "credentials", "secret": {"secretName": f"{name}-credentials", "defaultMode": 0o440}},
                ],
            },
        }

    def notebook(self, spec: WorkspaceSpec) -> dict[str, Any]:
        meta = self._meta(workspace_name(spec.id), self.namespace(spec), self._labels(spec))
        meta["annotations"] = {ANNOTATION_OWNER: spec.owner}  # as given; a label value cannot hold an e-mail
        return {
            "apiVersion": "kubeflow.org/v1",
            "kind": "Notebook",
            "metadata": meta,
            "spec": {"template": self.pod_template(spec)},
        }

    def validation_pod(self, spec: WorkspaceSpec) -> dict[str, Any]:
        """The Pod the Notebook's controller would create, for a server-side dry run (never stored).

        Its own name, so a dry-run create never collides with the notebook's real pod.
        """
        template = self.pod_template(spec)
        meta = self._meta(f"{workspace_name(spec.id)}-validate", self.namespace(spec), template["metadata"]["labels"])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}

    # --- helpers ------------------------------------------------------------------------------------
    def _labels(self, spec: WorkspaceSpec, scope: str = "workspace") -> dict[str, str]:
        """Labels for objects of the ``namespace`` (shared), of one ``user`` in it, or of one ``workspace``."""
        labels = {LABEL_MANAGED_BY: MANAGED_BY}
        if spec.project:
            labels[LABEL_PROJECT] = slug(spec.project, _DNS_LABEL_MAX)
        if scope != "namespace" or not spec.project:
            labels[LABEL_OWNER] = slug(spec.owner, _DNS_LABEL_MAX)
        if scope == "workspace":
            labels[LABEL_WORKSPACE] = str(spec.id)
            labels[LABEL_TEMPLATE] = slug(spec.template.name, _DNS_LABEL_MAX)
        return labels

    @staticmethod
    def _meta(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}
