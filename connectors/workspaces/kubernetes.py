"""The ``kubernetes`` workspace connector: Kubeflow Notebooks in a namespace per user or project.

Every object is written by server-side apply with field manager ``steward`` and ``force``: the manifests in
``kubernetes_manifests`` are the whole desired state of the fields Steward owns, so applying a spec twice
changes nothing (same resourceVersions) and applying it with a dataset fewer removes that dataset's key from
the credentials Secret. Other managers' fields (a Kubeflow controller's) are left alone.

``apply`` makes, in order: the namespace's objects (Namespace, ResourceQuota, LimitRange, NetworkPolicy,
ServiceAccount, RoleBinding, Profile), then validates the pod template by a server-side ``dryRun=All``
create of the equivalent Pod (the real API server's validation and admission: LimitRange bounds, requests
over limits, bad names), then the workspace's PersistentVolumeClaim, Secret and Notebook: 11 API calls, one
more when it restarts a stopped workspace. Nothing of the workspace itself is written when validation fails.
Malformed quantities ("lots") make the Pod undecodable (a 400 that names no field), so in that case the
Notebook is dry-run applied too: its schema's 422 names the field.

The namespace's objects are the same for every workspace of an owner (or project), and a pod template
validated once stays valid: for ``cache_seconds`` (300) after this process applied a namespace's objects
(or validated a pod template of the same shape there: the same template, command and resources, whatever the
workspace's id) with the same content, ``apply`` skips them; a workspace's PersistentVolumeClaim applied
with the same content is skipped too. So the next workspace in a namespace costs 3 calls (PVC, Secret,
Notebook) and re-applying a known workspace (new credentials) 2. A 404 in between (the namespace was
deleted meanwhile) forgets the namespace and applies everything again. Drift of those objects is corrected
at the latest ``cache_seconds`` later; ``cache_seconds=0`` applies all every time.

Stopping sets Kubeflow's ``kubeflow-resource-stopped`` annotation (the notebook controller scales the
StatefulSet to zero); that one annotation belongs to a second field manager, ``steward-lifecycle``, so the
spec's applies never touch it and starting again is that manager applying nothing (releasing it).
``delete`` removes the Notebook, Secret and PVC; the namespace and its shared objects stay (other
workspaces may use them; deleting a namespace also needs a controller-manager to finish).

Errors: connection failures, timeouts, 5xx and 429 raise ``BackendUnavailable`` (retry later); 4xx answers
(400, 403, 404, 409, 422) raise ``WorkspaceConnectorError`` with the API server's message, and with the
offending fields (in ``WorkspaceSpec`` terms where they map, e.g. ``resources.cpu``) from a 422's causes.

Options (``STEWARD_WORKSPACE_OPTIONS``, see ``steward/settings/base.py``): ``kubeconfig`` (a path; empty:
in-cluster service account), ``context``, ``namespace_prefix``, ``url_template`` (``{namespace}``,
``{name}``, ``{id}``, ``{owner}``), ``gateway_namespace``, ``user_cluster_role``, ``quota``, ``limits``,
``storage``, ``storage_class``, ``timeout`` (seconds per request), ``cache_seconds``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from connectors.workspaces.base import (
    WorkspaceConnectorError,
    WorkspaceSpec,
    WorkspaceState,
    WorkspaceStatus,
)
from connectors.workspaces.kubernetes_manifests import (
    ANNOTATION_OWNER,
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGED_BY,
    STOP_ANNOTATION,
    Layout,
    workspace_name,
)
from steward.canonical import digest
from steward.errors import BackendUnavailable, FieldProblem

__all__ = ["FIELD_MANAGER", "LIFECYCLE_FIELD_MANAGER", "KubernetesWorkspaceConnector"]

logger = logging.getLogger(__name__)

FIELD_MANAGER = "steward"
LIFECYCLE_FIELD_MANAGER = "steward-lifecycle"
_APPLY = "application/apply-patch+yaml"
_KUBEFLOW = ("kubeflow.org", "v1")

#: kind -> (typed API in ``_Apis``, snake_case resource name, namespaced)
_BUILTIN: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("core", "namespace", False),
    "ResourceQuota": ("core", "resource_quota", True),
    "LimitRange": ("core", "limit_range", True),
    "ServiceAccount": ("core", "service_account", True),
    "PersistentVolumeClaim": ("core", "persistent_volume_claim", True),
    "Secret": ("core", "secret", True),
    "NetworkPolicy": ("networking", "network_policy", True),
    "RoleBinding": ("rbac", "role_binding", True),
}
#: kind -> (plural, namespaced) in kubeflow.org/v1
_CUSTOM: dict[str, tuple[str, bool]] = {"Notebook": ("notebooks", True), "Profile": ("profiles", False)}

#: Container waiting reasons after which a workspace will not come up without a change.
_FAILED_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
    }
)

#: Kubernetes field paths (pod template or Pod) -> WorkspaceSpec fields, for error messages.
_SPEC_FIELDS = (
    (re.compile(r"resources\.(requests|limits)(\.|\[)nvidia\.com/gpu"), "resources.gpu"),
    (re.compile(r"resources\.(requests|limits)(\.|\[)cpu"), "resources.cpu"),
    (re.compile(r"resources\.(requests|limits)(\.|\[)memory"), "resources.memory"),
    (re.compile(r"containers\[0\]\.image"), "template.image"),
    (re.compile(r"containers\[0\]\.command"), "template.command"),
)

_LIMIT_MESSAGE = re.compile(r"(maximum|minimum) (?P<resource>\S+) usage per (Container|Pod)")


def _spec_field(path: str | None) -> str | None:
    if not path:
        return None
    for pattern, name in _SPEC_FIELDS:
        if pattern.search(path):
            return name
    return path


class KubernetesWorkspaceConnector:
    """Workspaces as Kubeflow Notebooks on a Kubernetes cluster (``STEWARD_WORKSPACE_CONNECTOR=kubernetes``).

    Builds no client until the first call (importing or constructing it touches no network and no file).
    ``api_calls`` counts the requests sent, for tests and benchmarks.
    """

    def __init__(
        self,
        *,
        kubeconfig: str = "",
        context: str = "",
        namespace_prefix: str = "steward-",
        url_template: str = "/notebook/{namespace}/{name}/",
        gateway_namespace: str = "istio-system",
        user_cluster_role: str = "edit",
        quota: dict[str, str] | None = None,
        limits: dict[str, dict[str, str]] | None = None,
        storage: str = "10Gi",
        storage_class: str = "",
        timeout: float = 10.0,
        cache_seconds: float = 300.0,
    ) -> None:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9-])?", namespace_prefix):
            raise ValueError(f"namespace_prefix {namespace_prefix!r}: use up to 20 of a-z, 0-9 and '-'")
        self.kubeconfig = kubeconfig
        self.context = context
        self.url_template = url_template
        self.timeout = timeout
        self.layout = Layout(
            namespace_prefix=namespace_prefix,
            gateway_namespace=gateway_namespace,
            user_cluster_role=user_cluster_role,
            quota=dict(quota or {}),
            limits={k: dict(v) for k, v in (limits or {}).items()},
            storage=storage,
            storage_class=storage_class or None,
        )
        self.cache_seconds = cache_seconds
        self.api_calls = 0
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._applied: dict[str, float] = {}  # content key -> monotonic time until which it counts as applied
        self._key_locks: dict[str, threading.Lock] = {}  # namespace content key -> held while applying it
        self._typed: _Apis | None = None
        self._server = "(not connected)"

    # --- protocol -----------------------------------------------------------------------------------
    def apply(self, spec: WorkspaceSpec) -> WorkspaceStatus:
        """Create or update every object of the workspace and make it run (see the module docstring)."""
        shared = self.layout.namespace_objects(spec)
        shared_key = _content_key(shared)
        if not self._recently_applied(shared_key):
            # One thread applies a namespace's objects; the others of that namespace wait for it, not repeat it.
            with self._key_lock(shared_key):
                if not self._recently_applied(shared_key):
                    return self._apply_workspace(spec, shared=shared, shared_key=shared_key)
        try:
            return self._apply_workspace(spec, shared=None, shared_key=shared_key)
        except WorkspaceConnectorError as exc:
            if exc.target_status != 404:
                raise
            # The namespace went away since this process last applied it: forget and apply everything.
            self._forget(shared_key)
            return self._apply_workspace(spec, shared=shared, shared_key=shared_key)

    def _apply_workspace(
        self, spec: WorkspaceSpec, *, shared: list[dict[str, Any]] | None, shared_key: str
    ) -> WorkspaceStatus:
        if shared is not None:
            for manifest in shared:
                self._apply(manifest)
            self._remember(shared_key)
        # A pod template's validity does not depend on the workspace's id (names derived from it are always valid
        # DNS labels): the key leaves the id out, so one validation covers every workspace of that shape there.
        validated_key = _content_key([shared_key, _without(self.layout.validation_pod(spec), str(spec.id))])
        if not self._recently_applied(validated_key):
            self._validate(spec)
            self._remember(validated_key)
        pvc = self.layout.pvc(spec)
        pvc_key = _content_key(["pvc", shared_key, pvc])
        if shared is not None or not self._recently_applied(pvc_key):  # with its namespace: it may be new
            self._apply(pvc)
            self._remember(pvc_key)
        self._apply(self.layout.secret(spec))
        notebook = self._apply(self.layout.notebook(spec))
        if STOP_ANNOTATION in _annotations(notebook):
            notebook = self._set_stopped(notebook, stopped=False)
        logger.info("workspace applied", extra={"workspace": str(spec.id), "namespace": _namespace(notebook)})
        return self._status_of(notebook)

    def stop(self, workspace_id: UUID) -> WorkspaceStatus:
        notebook = self._find_notebook(workspace_id)
        if notebook is None:
            return WorkspaceStatus(WorkspaceState.DELETED, message="no Notebook for this workspace")
        if STOP_ANNOTATION not in _annotations(notebook):
            notebook = self._set_stopped(notebook, stopped=True)
        return self._status_of(notebook)

    def delete(self, workspace_id: UUID) -> None:
        namespace = self._find_namespace(workspace_id)
        if namespace is None:
            return
        name = workspace_name(workspace_id)
        apis = self._apis()
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                f"delete Notebook {namespace}/{name}",
                lambda: apis.custom.delete_namespaced_custom_object(
                    *_KUBEFLOW, namespace, "notebooks", name, propagation_policy="Background", **self._opts()
                ),
            ),
            (
                f"delete Secret {namespace}/{name}-credentials",
                lambda: apis.core.delete_namespaced_secret(f"{name}-credentials", namespace, **self._opts()),
            ),
            (
                f"delete PersistentVolumeClaim {namespace}/{name}-home",
                lambda: apis.core.delete_namespaced_persistent_volume_claim(f"{name}-home", namespace, **self._opts()),
            ),
        ]
        for what, call in steps:
            try:
                self._request(what, call)
            except WorkspaceConnectorError as exc:
                if exc.target_status != 404:
                    raise
        logger.info("workspace deleted", extra={"workspace": str(workspace_id), "namespace": namespace})

    def status(self, workspace_id: UUID) -> WorkspaceStatus:
        notebook = self._find_notebook(workspace_id)
        if notebook is None:
            return WorkspaceStatus(WorkspaceState.DELETED, message="no Notebook for this workspace")
        return self._status_of(notebook)

    def list_managed(self) -> dict[UUID, WorkspaceStatus]:
        """Workspaces in this connector's namespaces (the ``namespace_prefix``): installations sharing a cluster
        with different prefixes never see, nor clean up, each other's workspaces."""
        found: dict[UUID, WorkspaceStatus] = {}
        for notebook in self._list_notebooks(f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_WORKSPACE}"):
            if not _namespace(notebook).startswith(self.layout.namespace_prefix):
                continue
            try:
                workspace_id = UUID(notebook["metadata"]["labels"][LABEL_WORKSPACE])
            except ValueError:
                continue  # someone else's label value; not one of ours
            found[workspace_id] = self._status_of(notebook)
        return found

    def ping(self) -> None:
        apis = self._apis()
        self._request("read the server version", lambda: apis.version.get_code(**self._opts()))

    # --- what this process applied recently ---------------------------------------------------------
    def _recently_applied(self, key: str) -> bool:
        with self._lock:
            until = self._applied.get(key)
            return until is not None and until > time.monotonic()

    def _remember(self, key: str) -> None:
        if self.cache_seconds > 0:
            with self._lock:
                now = time.monotonic()
                if len(self._applied) > 10_000:
                    self._applied = {k: t for k, t in self._applied.items() if t > now}
                self._applied[key] = now + self.cache_seconds

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            if len(self._key_locks) > 10_000:
                self._key_locks = {}
            return self._key_locks.setdefault(key, threading.Lock())

    def _forget(self, key: str) -> None:
        with self._lock:
            self._applied.pop(key, None)

    # --- steps --------------------------------------------------------------------------------------
    def _validate(self, spec: WorkspaceSpec) -> None:
        """Let the API server validate the pod template: a dry-run create of the Pod it would become."""
        pod = self.layout.validation_pod(spec)
        apis = self._apis()
        where = f"{pod['metadata']['namespace']}/{workspace_name(spec.id)}"
        try:
            self._request(
                f"validate the pod of workspace {where}",
                # The client serialises a plain dict body as is; its annotations name only the V1Pod model.
                lambda: apis.core.create_namespaced_pod(
                    pod["metadata"]["namespace"],
                    pod,  # type: ignore[arg-type]
                    dry_run="All",
                    field_validation="Strict",
                    **self._opts(),
                ),
            )
        except WorkspaceConnectorError as exc:
            if exc.target_status != 400:
                raise
            # An undecodable Pod (a malformed quantity): the Notebook's schema says which field.
            self._apply(self.layout.notebook(spec), dry_run=True)
            raise

    def _set_stopped(self, notebook: dict[str, Any], *, stopped: bool) -> dict[str, Any]:
        """Set (stopped) or release (not stopped) the stop annotation, owned by the lifecycle manager alone."""
        meta = notebook["metadata"]
        patch: dict[str, Any] = {
            "apiVersion": notebook["apiVersion"],
            "kind": "Notebook",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        }
        if stopped:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            patch["metadata"]["annotations"] = {STOP_ANNOTATION: stamp}
        return self._apply(patch, manager=LIFECYCLE_FIELD_MANAGER)

    def _status_of(self, notebook: dict[str, Any]) -> WorkspaceStatus:
        meta = notebook["metadata"]
        url = self.url_template.format(
            namespace=meta["namespace"],
            name=meta["name"],
            id=meta.get("labels", {}).get(LABEL_WORKSPACE, ""),
            owner=_annotations(notebook).get(ANNOTATION_OWNER, ""),
        )
        status = notebook.get("status") or {}
        ready = int(status.get("readyReplicas") or 0)
        if STOP_ANNOTATION in _annotations(notebook):
            if ready:
                return WorkspaceStatus(WorkspaceState.STOPPING, url, "scaling down")
            return WorkspaceStatus(WorkspaceState.STOPPED, url)
        if ready:
            return WorkspaceStatus(WorkspaceState.RUNNING, url)
        waiting = (status.get("containerState") or {}).get("waiting") or {}
        if waiting.get("reason") in _FAILED_REASONS:
            return WorkspaceStatus(WorkspaceState.FAILED, url, f"{waiting['reason']}: {waiting.get('message', '')}")
        return WorkspaceStatus(WorkspaceState.PROVISIONING, url, waiting.get("reason", "waiting for the notebook pod"))

    # --- lookups ------------------------------------------------------------------------------------
    def _list_notebooks(self, selector: str) -> Iterator[dict[str, Any]]:
        apis = self._apis()
        token: str | None = None
        while True:
            page = self._request(
                "list Notebooks",
                partial(
                    apis.custom.list_cluster_custom_object,
                    *_KUBEFLOW,
                    "notebooks",
                    label_selector=selector,
                    limit=500,
                    _continue=token,
                    **self._opts(),
                ),
            )
            yield from page.get("items", [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def _find_notebook(self, workspace_id: UUID) -> dict[str, Any] | None:
        return next(iter(self._list_notebooks(f"{LABEL_WORKSPACE}={workspace_id}")), None)

    def _find_namespace(self, workspace_id: UUID) -> str | None:
        """Where the workspace's objects are: its Notebook's namespace, else its Secret's or its PVC's."""
        notebook = self._find_notebook(workspace_id)
        if notebook is not None:
            return _namespace(notebook)
        apis = self._apis()
        selector = f"{LABEL_WORKSPACE}={workspace_id}"
        lookups: list[tuple[str, Callable[[], Any]]] = [
            ("list Secrets", lambda: apis.core.list_secret_for_all_namespaces(label_selector=selector, **self._opts())),
            (
                "list PersistentVolumeClaims",
                lambda: apis.core.list_persistent_volume_claim_for_all_namespaces(
                    label_selector=selector, **self._opts()
                ),
            ),
        ]
        for what, call in lookups:
            items = self._request(what, call).get("items", [])
            if items:
                return _namespace(items[0])
        return None

    # --- transport ----------------------------------------------------------------------------------
    def _apply(
        self, manifest: dict[str, Any], *, manager: str = FIELD_MANAGER, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply of one manifest (create or update; ``force``: Steward owns these fields)."""
        kind = manifest["kind"]
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta.get("namespace")
        kwargs: dict[str, Any] = {
            "body": manifest,
            "field_manager": manager,
            "force": True,
            "field_validation": "Strict",
            "_content_type": _APPLY,
            **self._opts(),
        }
        if dry_run:
            kwargs["dry_run"] = "All"
        apis = self._apis()
        call: Callable[[], Any]
        if kind in _CUSTOM:
            plural, namespaced = _CUSTOM[kind]
            if namespaced:
                call = partial(apis.custom.patch_namespaced_custom_object, *_KUBEFLOW, namespace, plural, name)
            else:
                call = partial(apis.custom.patch_cluster_custom_object, *_KUBEFLOW, plural, name)
        else:
            api_name, resource, namespaced = _BUILTIN[kind]
            api = getattr(apis, api_name)
            if namespaced:
                call = partial(getattr(api, f"patch_namespaced_{resource}"), name, namespace)
            else:
                call = partial(getattr(api, f"patch_{resource}"), name)
        where = f"{namespace}/{name}" if namespace else name
        return self._request(f"{'dry-run ' if dry_run else ''}apply {kind} {where}", partial(call, **kwargs))

    def _opts(self) -> dict[str, Any]:
        # Raw responses: we read plain JSON (faster than the generated models, and the same for every kind).
        return {"_preload_content": False, "_request_timeout": (min(self.timeout, 5.0), self.timeout)}

    def _request(self, what: str, call: Callable[[], Any]) -> dict[str, Any]:
        """Send one request; map failures to ``BackendUnavailable`` or ``WorkspaceConnectorError``."""
        with self._count_lock:  # reconcilers share one connector across threads
            self.api_calls += 1
        try:
            response = call()
        except ApiException as exc:
            raise self._error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(
                f"Kubernetes API server {self._server} is unreachable (while trying to {what}): {_reason(exc)}"
            ) from exc
        body = response.data
        return json.loads(body) if body else {}

    def _error(self, what: str, exc: ApiException) -> Exception:
        try:
            body = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            body = {}
        status = exc.status or 0
        message = body.get("message") or exc.reason or "no message"
        if status == 0 or status >= 500 or status == 429:
            return BackendUnavailable(
                f"Kubernetes API server {self._server} could not {what} ({status or 'no response'}): {message}"
            )
        if status == 401:
            return BackendUnavailable(
                f"Kubernetes API server {self._server} rejected Steward's credentials (401) trying to {what}; "
                "check the kubeconfig (STEWARD_K8S_KUBECONFIG) or the service account token"
            )
        if status == 404 and "could not find the requested resource" in message:
            message += " (is this kind served? the Kubeflow Notebook and Profile CRDs must be installed)"
        causes = (body.get("details") or {}).get("causes") or []
        problems = [
            FieldProblem(
                field=_spec_field(cause.get("field")),
                message=f"{cause.get('message', '')} (Kubernetes field {cause.get('field')})"
                if cause.get("field")
                else cause.get("message", ""),
                code=cause.get("reason") or "invalid",
            )
            for cause in causes
        ]
        # Admission (LimitRange) answers 403 without causes; its message names the resource.
        bound = _LIMIT_MESSAGE.search(message) if status == 403 and not problems else None
        if bound:
            problems.append(FieldProblem(field=_spec_field(f"resources.limits.{bound['resource']}"), message=message))
        return WorkspaceConnectorError(
            f"Kubernetes refused to {what} ({status} {body.get('reason') or exc.reason}): {message}",
            problems=problems,
            target_status=status,
        )

    def _apis(self) -> _Apis:
        """The typed APIs, built on first use from the kubeconfig (or the in-cluster service account)."""
        with self._lock:
            if self._typed is None:
                configuration = k8s.Configuration()
                try:
                    if self.kubeconfig:
                        k8s_config.load_kube_config(
                            config_file=self.kubeconfig,
                            context=self.context or None,
                            client_configuration=configuration,
                            persist_config=False,
                        )
                    else:
                        k8s_config.load_incluster_config(client_configuration=configuration)
                except (ConfigException, OSError) as exc:
                    source = self.kubeconfig or "the in-cluster service account"
                    raise BackendUnavailable(f"cannot load the Kubernetes configuration from {source}: {exc}") from exc
                self._server = configuration.host
                # Reconcilers apply on a thread pool (workspaces_reconcile_many): keep a connection for each.
                configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 32)
                self._typed = _Apis.build(k8s.ApiClient(configuration))
            return self._typed


@dataclass(frozen=True)
class _Apis:
    """The official client's typed APIs, sharing one ApiClient (one connection pool)."""

    core: k8s.CoreV1Api
    networking: k8s.NetworkingV1Api
    rbac: k8s.RbacAuthorizationV1Api
    custom: k8s.CustomObjectsApi
    version: k8s.VersionApi

    @classmethod
    def build(cls, api_client: k8s.ApiClient) -> _Apis:
        return cls(
            core=k8s.CoreV1Api(api_client),
            networking=k8s.NetworkingV1Api(api_client),
            rbac=k8s.RbacAuthorizationV1Api(api_client),
            custom=k8s.CustomObjectsApi(api_client),
            version=k8s.VersionApi(api_client),
        )


def _content_key(content: Any) -> str:
    return digest(content)


def _without(content: Any, text: str) -> Any:
    """``content`` (JSON-like) with every occurrence of ``text`` in its strings replaced by a placeholder."""
    if isinstance(content, str):
        return content.replace(text, "{id}")
    if isinstance(content, dict):
        return {_without(k, text): _without(v, text) for k, v in content.items()}
    if isinstance(content, list):
        return [_without(v, text) for v in content]
    return content


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def _namespace(obj: dict[str, Any]) -> str:
    return obj["metadata"]["namespace"]


def _reason(exc: BaseException) -> str:
    """The innermost cause of a urllib3 failure ("Connection refused"), not its retry wrapper."""
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
