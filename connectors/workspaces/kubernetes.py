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

``list_managed`` (the periodic pass) lists every managed Notebook whole once per process, then keeps them by a
watch (a daemon thread, from that list's resourceVersion, with bookmarks) and by what this process applies: a
later pass asks only for the names the API server lists (a Table without objects: one small call, about 0.05 s
for 5,000 where the whole list took seconds) and answers from what it keeps when those are exactly the names
it holds, waiting up to 2 s for the watch to bring changes made meanwhile; otherwise, or when the watch ended
(410 Gone, a broken connection) or the process forked since (a Celery worker's children), it lists them whole
again. ``watch=False``: a whole list every time.

Stopping sets Kubeflow's ``kubeflow-resource-stopped`` annotation (the notebook controller scales the
StatefulSet to zero); that one annotation belongs to a second field manager, ``steward-lifecycle``, so the
spec's applies never touch it and starting again is that manager applying nothing (releasing it).
``delete`` removes the Notebook, Secret and PVC; the namespace and its shared objects stay (other
workspaces may use them; deleting a namespace also needs a controller-manager to finish).

Applies and the pod validation are sent by REST path through the official client's ``ApiClient`` (its
configuration, credentials and connection pool), not through its typed API classes: building ``CoreV1Api`` imports
a module that took 2-4 s per process, all of it inside a new worker's first pass; deletes and lookups, which are
rare, still use the typed APIs, each built on first use.

Errors: connection failures, timeouts, 5xx and 429 raise ``BackendUnavailable`` (retry later); 4xx answers
(400, 403, 404, 409, 422) raise ``WorkspaceConnectorError`` with the API server's message, and with the
offending fields (in ``WorkspaceSpec`` terms where they map, e.g. ``resources.cpu``) from a 422's causes.

Options (``STEWARD_WORKSPACE_OPTIONS``, see ``steward/settings/base.py``): ``kubeconfig`` (a path; empty:
in-cluster service account), ``context``, ``namespace_prefix``, ``url_template`` (``{namespace}``,
``{name}``, ``{id}``, ``{owner}``), ``gateway_namespace``, ``user_cluster_role``, ``quota``, ``limits``,
``storage``, ``storage_class``, ``timeout`` (seconds per request), ``cache_seconds``, ``watch``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cached_property, partial
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
#: A list as a Table without its objects: the names alone (the cheapest consistent listing there is).
_TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"
#: Seconds one watch request lasts before the API server ends it (and the watcher opens the next one).
WATCH_SECONDS = 60
_KUBEFLOW = ("kubeflow.org", "v1")
#: Every Notebook a Steward installation manages (each installation keeps those under its namespace prefix).
_MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_WORKSPACE}"

#: kind -> (API group path, plural, namespaced): the REST paths ``_apply`` sends server-side applies to.
_BUILTIN: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Secret": ("/api/v1", "secrets", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
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
        watch: bool = True,
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
        self.watch = watch
        self.api_calls = 0
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._applied: dict[str, float] = {}  # content key -> monotonic time until which it counts as applied
        self._key_locks: dict[str, threading.Lock] = {}  # namespace content key -> held while applying it
        self._typed: _Apis | None = None
        self._server = "(not connected)"
        self._seen = _Notebooks(partial(_notebook_status, url_template))

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
        prefix = self.layout.namespace_prefix
        return {
            workspace_id: status
            for (namespace, _), (_, workspace_id, status) in self._managed().items()
            if workspace_id is not None and namespace.startswith(prefix)
        }

    def _managed(self) -> dict[tuple[str, str], _Seen]:
        """Every managed Notebook of the cluster, as seen now: from the watch when it runs and holds exactly the
        Notebooks the API server lists (one call: their names), else from a whole list (which starts the watch)."""
        if self.watch and self._seen.watching():
            if self._seen.settled(self._notebook_names()):
                return self._seen.snapshot()
            logger.info("the Notebook watch is behind the API server: listing them again")
        resource_version, notebooks = self._list_all_notebooks()
        generation, seen = self._seen.reset(notebooks, resource_version if self.watch else None)
        if self.watch:
            self._start_watch(generation)
        return seen

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
        namespace = pod["metadata"]["namespace"]
        where = f"{namespace}/{workspace_name(spec.id)}"
        try:
            self._request(
                f"validate the pod of workspace {where}",
                partial(
                    self._send,
                    "POST",
                    f"/api/v1/namespaces/{namespace}/pods",
                    [("dryRun", "All"), ("fieldValidation", "Strict")],
                    pod,
                    "application/json",
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
        return _notebook_status(self.url_template, notebook)

    # --- lookups ------------------------------------------------------------------------------------
    def _notebook_pages(self, selector: str) -> Iterator[dict[str, Any]]:
        """The list answers (pages of 500) of the Notebooks matching ``selector``, in order."""
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
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def _list_notebooks(self, selector: str) -> Iterator[dict[str, Any]]:
        for page in self._notebook_pages(selector):
            yield from page.get("items", [])

    def _list_all_notebooks(self) -> tuple[str, list[dict[str, Any]]]:
        """Every managed Notebook of the cluster, whole (pages of 500), and the list's resourceVersion."""
        notebooks: list[dict[str, Any]] = []
        resource_version = ""
        for page in self._notebook_pages(_MANAGED):
            notebooks.extend(page.get("items", []))
            resource_version = resource_version or (page.get("metadata") or {}).get("resourceVersion", "")
        return resource_version, notebooks

    def _notebook_names(self) -> Counter[str]:
        """The names of every managed Notebook of the cluster: a Table without its objects (one small answer)."""

        def call() -> Any:
            return self._send(
                "GET",
                "/apis/{}/{}/notebooks".format(*_KUBEFLOW),
                [("labelSelector", _MANAGED), ("includeObject", "None")],
                accept=_TABLE,
            )

        table = self._request("list Notebook names", call)
        columns = [c.get("format") for c in table.get("columnDefinitions") or []]
        at = columns.index("name") if "name" in columns else 0
        return Counter(row["cells"][at] for row in table.get("rows") or [])

    def _start_watch(self, generation: int) -> None:
        threading.Thread(
            target=_watch_notebooks,
            args=(weakref.ref(self), self._seen, generation),
            name="steward-notebook-watch",
            daemon=True,
        ).start()

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
        query = [("fieldManager", manager), ("force", "true"), ("fieldValidation", "Strict")]
        if dry_run:
            query.append(("dryRun", "All"))
        if kind in _CUSTOM:
            plural, namespaced = _CUSTOM[kind]
            prefix = "/apis/{}/{}".format(*_KUBEFLOW)
        else:
            prefix, plural, namespaced = _BUILTIN[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}/{name}" if namespaced else f"{prefix}/{plural}/{name}"
        call = partial(self._send, "PATCH", path, query, manifest, _APPLY)
        where = f"{namespace}/{name}" if namespace else name
        applied = self._request(f"{'dry-run ' if dry_run else ''}apply {kind} {where}", call)
        if kind == "Notebook" and not dry_run:
            self._seen.put(applied)  # what this process wrote is seen at once, not when the watch brings it
        return applied

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One request by path through the client's ApiClient (its configuration, credentials and connection pool),
        without the typed API classes: building ``CoreV1Api`` and the others imports their modules, which took
        seconds per process (4 s on the loaded benchmark machine), all of it in the first pass of a new worker.
        Raises ``ApiException`` for an answer outside 2xx, as the typed calls do; returns the raw response."""
        api = self._apis().api_client
        request = api.param_serialize(
            method,
            path,
            query_params=query,
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=self._opts()["_request_timeout"])
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

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
                self._typed = _Apis(k8s.ApiClient(configuration))
            return self._typed


class _Apis:
    """The official client's typed APIs, sharing one ApiClient (one connection pool), each built on first use:
    building one imports its module, which costs seconds for ``CoreV1Api``, so the calls every workspace makes
    (applies, validation) go by path (``KubernetesWorkspaceConnector._send``) and only deletes and lookups load
    the core API."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client

    @cached_property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)

    @cached_property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api_client)

    @cached_property
    def version(self) -> k8s.VersionApi:
        return k8s.VersionApi(self.api_client)


#: One Notebook as last seen: its resourceVersion, its workspace id (``None``: a label value that is not one) and
#: the state it shows.
_Seen = tuple[int, UUID | None, WorkspaceStatus]


class _Notebooks:
    """The cluster's managed Notebooks as this process last saw them: a whole list, then the events of a watch
    (run by ``_watch_notebooks`` in a daemon thread) and the Notebooks this process applied.

    A ``generation`` is one list and the watch started from it; a watch that fails (the API server ended it
    with 410 Gone, the connection broke) ends its generation, and the next ``list_managed`` lists again. After a
    fork (a Celery worker's children) the watch does not run in the child: it lists again too.
    """

    def __init__(self, derive: Callable[[dict[str, Any]], WorkspaceStatus]) -> None:
        self._derive = derive
        self._changed = threading.Condition()
        self._items: dict[tuple[str, str], _Seen] = {}
        self.resource_version = ""
        self.generation = 0
        self._live = False
        self._pid = 0

    def watching(self) -> bool:
        with self._changed:
            return self._live and self._pid == os.getpid()

    def current(self, generation: int) -> bool:
        with self._changed:
            return self._live and self.generation == generation

    def reset(
        self, notebooks: list[dict[str, Any]], resource_version: str | None
    ) -> tuple[int, dict[tuple[str, str], _Seen]]:
        """Start over from a whole list; ``resource_version`` ``None``: no watch follows (nothing is kept)."""
        seen = dict(self._entry(notebook) for notebook in notebooks)
        with self._changed:
            self.generation += 1
            self._live = resource_version is not None
            self._items = dict(seen) if self._live else {}
            self.resource_version = resource_version or ""
            self._pid = os.getpid()
            self._changed.notify_all()
            return self.generation, seen

    def put(self, notebook: dict[str, Any], generation: int | None = None) -> bool:
        """A Notebook as written or watched (kept unless an equal or newer version is known); ``False``: the
        watch of ``generation`` is over."""
        key, entry = self._entry(notebook)
        with self._changed:
            if generation is not None and generation != self.generation:
                return False
            if self._live:
                known = self._items.get(key)
                if known is None or entry[0] >= known[0]:
                    self._items[key] = entry
                self._changed.notify_all()
            return True

    def event(self, event: dict[str, Any], generation: int) -> bool:
        """Apply one watch event; ``False`` when this watch must end (its generation is over, or 410 Gone)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            self.invalidate(generation)
            return False
        if kind in ("ADDED", "MODIFIED"):
            ok = self.put(obj, generation)
        else:
            with self._changed:
                ok = generation == self.generation
                if ok and kind == "DELETED":
                    meta = obj.get("metadata") or {}
                    self._items.pop((meta.get("namespace", ""), meta.get("name", "")), None)
                    self._changed.notify_all()
        if ok:  # BOOKMARK included: the watch goes on from here
            with self._changed:
                self.resource_version = (obj.get("metadata") or {}).get("resourceVersion") or self.resource_version
        return ok

    def invalidate(self, generation: int) -> None:
        with self._changed:
            if generation == self.generation:
                self._live = False
                self._items = {}
                self._changed.notify_all()

    def settled(self, names: Counter[str], wait: float = 2.0) -> bool:
        """Whether this holds exactly the Notebooks named (what the API server lists now), waiting up to ``wait``
        seconds for the watch to bring the latest changes."""
        deadline = time.monotonic() + wait
        with self._changed:
            while self._live:
                if Counter(name for _, name in self._items) == names:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return False

    def snapshot(self) -> dict[tuple[str, str], _Seen]:
        with self._changed:
            return dict(self._items)

    def _entry(self, notebook: dict[str, Any]) -> tuple[tuple[str, str], _Seen]:
        meta = notebook["metadata"]
        try:
            workspace_id: UUID | None = UUID((meta.get("labels") or {}).get(LABEL_WORKSPACE, ""))
        except ValueError:
            workspace_id = None  # someone else's label value; not one of ours
        try:
            version = int(meta.get("resourceVersion") or 0)
        except ValueError:  # opaque in principle; etcd's are integers
            version = 0
        return (meta["namespace"], meta["name"]), (version, workspace_id, self._derive(notebook))


def _watch_notebooks(owner: weakref.ref[KubernetesWorkspaceConnector], seen: _Notebooks, generation: int) -> None:
    """Follow the managed Notebooks from the list of ``generation`` on, one watch request after another (each
    ``WATCH_SECONDS`` long, with bookmarks), until the connector is gone or the watch fails."""
    while True:
        connector = owner()
        if connector is None or not seen.current(generation):
            return
        apis, timeout = connector._apis(), connector.timeout
        del connector  # the watch does not keep the connector alive
        try:
            response: Any = apis.custom.list_cluster_custom_object(
                *_KUBEFLOW,
                "notebooks",
                label_selector=_MANAGED,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=seen.resource_version,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(min(timeout, 5.0), WATCH_SECONDS + timeout),
            )
            try:
                for line in response:
                    if line.strip() and not seen.event(json.loads(line), generation):
                        return
            finally:
                response.release_conn()
        except Exception as exc:  # whatever broke it, the next pass lists again
            logger.info("the Notebook watch ended (%s); the next periodic pass lists them again", exc)
            seen.invalidate(generation)
            return


def _notebook_status(url_template: str, notebook: dict[str, Any]) -> WorkspaceStatus:
    """The workspace state a Notebook shows (stop annotation, ready replicas, the container's waiting reason)."""
    meta = notebook["metadata"]
    url = url_template.format(
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
