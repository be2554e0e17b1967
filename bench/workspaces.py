"""Workspace benchmark: reconcile 500 (or 5,000) workspaces against the real kube-apiserver (scripts/services/kube.sh).

Setup (not timed): a throw-away PostgreSQL database, ``--owners`` users each holding grants on two datasets,
and ``--workspaces`` workspaces spread over them, each mounting both datasets (created through
``workspace_create``, with the per-request reconcile switched off so the pass below starts from scratch).

1. From scratch: the periodic pass (``workspaces_reconcile_due``: one ``list_managed`` call, two queries to
   find what is due) and the reconcile of every workspace (namespace objects, validation, PVC, Secret with
   two signed grant tokens, Notebook) on ``--workers`` threads, as a Celery worker with that concurrency.
2. After one grant change each: one of each workspace's two grants is revoked; the next periodic pass finds
   all of them due and applies each spec with one dataset fewer (its Secret key goes). Checked: every
   Secret then holds exactly one key.
3. Steady state: a periodic pass with nothing to do.

For each: wall time, Kubernetes API calls per workspace, database queries are not counted. Goals (issue 18):
<= 60 s for 5,000 from scratch on this machine, steady state <= 1 s (was <= 30 s for 500). Results:
bench/results/workspaces.json (with the load average: the machine is shared). Namespaces use a prefix of their
own and are removed afterwards.

``--mode many`` (the default since issue 18) reconciles the due workspaces as the periodic pass's tasks do:
batches of ``--batch`` through ``workspaces_reconcile_many`` (``--threads`` connector calls at once), ``--workers``
batches at once; ``--mode single`` is the path before (one ``workspace_reconcile`` per workspace on ``--workers``
threads). ``--clone`` creates one workspace per owner through the service and copies the rest by SQL (setup for
5,000 in minutes, not tens of minutes; not timed either way). ``list_managed_s`` is the part of a pass spent in
the connector's ``list_managed``: a whole list the first time, then (the watch, issue 18) the Notebooks' names
alone; ``--no-watch`` lists every Notebook whole in each pass, as before.

Usage: python bench/workspaces.py [--workspaces 500] [--owners 50] [--workers 2] [--mode many|single]
                                  [--batch 100] [--threads 8] [--clone] [--output workspaces] [--kubeconfig PATH]
                                  [--no-watch]
    python bench/workspaces.py --workspaces 5000 --owners 100 --clone
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import ROOT, bench_env, fresh_database, manage, save


def _default_kubeconfig() -> str:
    """``STEWARD_KUBECONFIG``, this checkout's ``.services/kube/kubeconfig``, or the main checkout's (a worktree)."""
    if os.environ.get("STEWARD_KUBECONFIG"):
        return os.environ["STEWARD_KUBECONFIG"]
    here = ROOT / ".services" / "kube" / "kubeconfig"
    common = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT, capture_output=True, text=True)
    main = (ROOT / common.stdout.strip()).resolve().parent / ".services" / "kube" / "kubeconfig"
    return str(here if here.is_file() or not common.stdout.strip() or not main.is_file() else main)


NS = "postgres://warehouse.bench:5432"


def _setup_django(database_url: str, kubeconfig: str, prefix: str, *, watch: bool = True) -> None:
    env = bench_env(
        database_url,
        STEWARD_WORKSPACE_CONNECTOR="kubernetes",
        STEWARD_K8S_WATCH="1" if watch else "0",
        STEWARD_K8S_KUBECONFIG=kubeconfig,
        STEWARD_K8S_NAMESPACE_PREFIX=prefix,
        STEWARD_K8S_STORAGE="1Gi",
        STEWARD_WORKSPACE_QUOTA='{"workspaces": 100000, "cpu": "100000", "memory": "1000Ti", "gpu": 0}',
        CELERY_TASK_ALWAYS_EAGER="1",
    )
    manage(env, "migrate", "--noinput", "-v0")
    os.environ.update(env)
    import django

    django.setup()


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this process and, from their pid files, the kube-apiserver and etcd (when local)."""
    out = {"bench": time.process_time()}
    state = Path(_default_kubeconfig()).parent
    for name in ("kube-apiserver", "etcd"):
        try:
            pid = (state / f"{name}.pid").read_text().strip()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _create(owners: int, workspaces: int) -> list[uuid.UUID]:
    from django.contrib.auth.models import User
    from django.db import transaction

    from catalog.services import dataset_create
    from catalog.validation import parse_dataset
    from governance.services.access_requests import access_request_create
    from governance.services.signing import issue_token
    from steward.errors import ProblemCollector
    from workspaces.services import lifecycle

    lifecycle._reconcile_after_commit = lambda workspace: None  # the pass below starts from scratch
    admin = User.objects.create_user("bench-admin", is_superuser=True)
    ids: list[uuid.UUID] = []
    per_owner = -(-workspaces // owners)
    with transaction.atomic():
        for o in range(owners):
            user = User.objects.create_user(f"bench{o:04d}")
            datasets = []
            for d in range(2):
                problems = ProblemCollector()
                spec = parse_dataset({"namespace": NS, "name": f"sales.o{o}.t{d}"}, "", problems)
                problems.raise_if_any()
                datasets.append(dataset_create(actor=admin, spec=spec))
            access_request_create(
                actor=user,
                datasets=[d.pk for d in datasets],
                purpose="analytics",
                justification="benchmark",
                duration=timedelta(days=1),
            )
            for _ in range(min(per_owner, workspaces - len(ids))):
                created = lifecycle.workspace_create(
                    actor=user,
                    template="jupyter-cpu",
                    datasets=[d.pk for d in datasets],
                    resources={"cpu": "100m", "memory": "256Mi"},
                )
                ids.append(created.pk)
    # The first token ever creates the signing key; do it before reconcilers race for it.
    from django.utils import timezone

    issue_token(
        grant_id=uuid.uuid4(), subject="bench", asset="x", grant_valid_until=timezone.now() + timedelta(hours=1)
    )
    return ids


def _clone(copies: int) -> list[uuid.UUID]:
    """Every workspace so far ``copies`` more times, by SQL (a set-up shortcut for 5,000): the same owner,
    template and datasets, each copy with workspace grants of its own; returns every workspace id."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:

        def columns(table: str) -> list[str]:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND table_schema = current_schema() ORDER BY ordinal_position",
                [table],
            )
            return [row[0] for row in cursor.fetchall()]

        def copy(table: str, source: str, values: dict[str, str], joins: str) -> None:
            cols = [c for c in columns(table) if values.get(c) != "DEFAULT"]
            select = ", ".join(values.get(c, f"{source}.{c}") for c in cols)
            cursor.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} {joins}")

        cursor.execute(
            "CREATE TEMP TABLE bench_ws_map ON COMMIT DROP AS SELECT w.id AS src, gen_random_uuid() AS dst, n"
            " FROM workspaces_workspace w CROSS JOIN generate_series(1, %s) n",
            [copies],
        )
        copy(
            "workspaces_workspace",
            "w",
            {"id": "m.dst", "name": "w.name || '-' || m.n"},
            "FROM bench_ws_map m JOIN workspaces_workspace w ON w.id = m.src",
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_grant_map ON COMMIT DROP AS SELECT g.id AS src, gen_random_uuid() AS dst,"
            " m.dst AS ws FROM governance_grant g JOIN bench_ws_map m ON g.workspace_id = m.src"
        )
        copy(
            "governance_grant",
            "g",
            {"id": "gm.dst", "workspace_id": "gm.ws"},
            "FROM bench_grant_map gm JOIN governance_grant g ON g.id = gm.src",
        )
        copy(
            "workspaces_workspacedataset",
            "d",
            {"id": "DEFAULT", "workspace_id": "m.dst", "grant_id": "gm.dst"},
            "FROM workspaces_workspacedataset d JOIN bench_ws_map m ON d.workspace_id = m.src"
            " LEFT JOIN bench_grant_map gm ON gm.src = d.grant_id AND gm.ws = m.dst",
        )
        cursor.execute("SELECT id FROM workspaces_workspace")
        return [row[0] for row in cursor.fetchall()]


def _pass(workers: int, total: int, *, mode: str = "many", batch: int = 100, threads: int = 8) -> dict:
    """One periodic pass over ``total`` workspaces. ``many``: the due ones in batches of ``batch``
    (``workspaces_reconcile_many``, ``threads`` connector calls at once), ``workers`` batches at once (Celery
    worker slots); ``single``: one ``workspace_reconcile`` each on ``workers`` threads (the path before)."""
    from django.db import connection

    from connectors.workspaces import get_connector
    from workspaces.services import workspace_reconcile, workspaces_reconcile_due, workspaces_reconcile_many

    connector = get_connector()
    calls_before = connector.api_calls
    due: list[uuid.UUID] = []
    listed: list[float] = []
    list_managed = connector.list_managed

    def timed_list_managed() -> dict:
        t = time.perf_counter()
        try:
            return list_managed()
        finally:
            listed.append(time.perf_counter() - t)

    connector.list_managed = timed_list_managed  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        report = workspaces_reconcile_due(dispatch=due.append)
    finally:
        del connector.list_managed
    found = time.perf_counter() - started

    def reconcile(workspace_id: uuid.UUID) -> str:
        try:
            done = workspace_reconcile(workspace_id=workspace_id)
            return done.state if done else "busy"
        finally:
            connection.close()

    def reconcile_batch(ids: list[uuid.UUID]) -> list[str]:
        try:
            return [str(s) for s in workspaces_reconcile_many(workspace_ids=ids, threads=threads).values()]
        finally:
            connection.close()

    load_before = _load_average()
    cpu_before = _cpu_seconds()
    with ThreadPoolExecutor(workers) as pool:
        if mode == "single":
            states = list(pool.map(reconcile, due))
        else:
            batches = [due[i : i + batch] for i in range(0, len(due), batch)]
            states = [s for part in pool.map(reconcile_batch, batches) for s in part]
    wall = time.perf_counter() - started
    calls = connector.api_calls - calls_before
    cpu_after = _cpu_seconds()
    return {
        # Where the applies' CPU went (the bench process also plans, signs tokens and records).
        "cpu_s": {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after if name in cpu_before},
        "due": report.due,
        "wall_s": round(wall, 2),
        "find_due_s": round(found, 3),
        "list_managed_s": round(sum(listed), 3),
        "api_calls": calls,
        "api_calls_per_workspace": round(calls / total, 3),
        "workspaces_per_s": round(report.due / wall, 1) if report.due else 0,
        "states": {str(s): states.count(s) for s in sorted(set(states))},
        "load_average_before_after": [load_before, _load_average()],
    }


def _change_one_grant_each(ids: list[uuid.UUID]) -> None:
    from governance.models import Grant
    from governance.services.workspace_grants import workspace_grants_revoke
    from governance.signals import grant_changed
    from workspaces.receivers import on_grant_changed

    # Measure the periodic pass, as after expiry: the announcement's own follow-up is switched off here.
    grant_changed.disconnect(on_grant_changed, dispatch_uid="workspaces.on_grant_changed")
    first = dict(
        Grant.objects.filter(workspace_id__in=ids, dataset__name__endswith=".t1").values_list("workspace_id", "pk")
    )
    for workspace_id in ids:
        workspace_grants_revoke(workspace_id=workspace_id, grant_ids=[first[workspace_id]], reason="benchmark")


def _secret_keys(prefix: str) -> dict[int, int]:
    """How many Secrets hold how many keys, in the benchmark's namespaces (one list call)."""
    from connectors.workspaces import get_connector

    core = get_connector()._apis().core
    counts: dict[int, int] = {}
    for secret in core.list_secret_for_all_namespaces(label_selector="steward.io/workspace-id").items:
        if secret.metadata.namespace.startswith(prefix):
            n = len(secret.data or {})
            counts[n] = counts.get(n, 0) + 1
    return counts


def _cleanup(prefix: str) -> int:
    from kubernetes.client.exceptions import ApiException

    from connectors.workspaces import get_connector

    apis = get_connector()._apis()
    core, custom = apis.core, apis.custom
    removed = 0
    for ns in core.list_namespace().items:
        name = ns.metadata.name
        if not name.startswith(prefix):
            continue
        for pvc in core.list_namespaced_persistent_volume_claim(name).items:
            core.patch_namespaced_persistent_volume_claim(pvc.metadata.name, name, {"metadata": {"finalizers": None}})
        steps = [
            lambda n=name: custom.delete_collection_namespaced_custom_object("kubeflow.org", "v1", n, "notebooks"),
            lambda n=name: core.delete_collection_namespaced_secret(n),
            lambda n=name: core.delete_collection_namespaced_persistent_volume_claim(n),
            lambda n=name: custom.delete_cluster_custom_object("kubeflow.org", "v1", "profiles", n),
            lambda n=name: core.delete_namespace(n),
            lambda n=name: core.replace_namespace_finalize(n, {"metadata": {"name": n}, "spec": {"finalizers": []}}),
        ]
        for step in steps:
            try:
                step()
            except ApiException as exc:
                if exc.status != 404:
                    raise
        removed += 1
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=500)
    parser.add_argument("--owners", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="batches at once (single: threads)")
    parser.add_argument("--mode", choices=["many", "single"], default="many")
    parser.add_argument("--batch", type=int, default=100, help="workspaces per batch (many)")
    parser.add_argument("--threads", type=int, default=8, help="connector calls at once per batch (many)")
    parser.add_argument("--clone", action="store_true", help="create one per owner, copy the rest by SQL")
    parser.add_argument("--output", default="workspaces", help="results file name under bench/results")
    parser.add_argument("--kubeconfig", default=_default_kubeconfig())
    parser.add_argument(
        "--no-watch", action="store_true", help="list every Notebook whole in each pass (STEWARD_K8S_WATCH=0)"
    )
    args = parser.parse_args()
    if not Path(args.kubeconfig).is_file():
        sys.exit(f"no kubeconfig at {args.kubeconfig}: start the test servers (make services) or pass --kubeconfig")
    prefix = f"bw{uuid.uuid4().hex[:6]}-"
    database = fresh_database(os.environ.get("STEWARD_BENCH_WORKSPACES_DB", "steward_bench_workspaces"))
    _setup_django(database, args.kubeconfig, prefix, watch=not args.no_watch)
    load_before = _load_average()
    try:
        t0 = time.perf_counter()
        if args.clone:  # one workspace per owner through the service, the rest copied by SQL
            _create(args.owners, args.owners)
            ids = _clone(-(-args.workspaces // args.owners) - 1)
        else:
            ids = _create(args.owners, args.workspaces)
        setup_s = round(time.perf_counter() - t0, 1)
        print(f"[workspaces] {len(ids)} workspaces for {args.owners} owners created in {setup_s}s")
        scratch = _pass(args.workers, len(ids), mode=args.mode, batch=args.batch, threads=args.threads)
        print(f"[workspaces] from scratch: {scratch}")
        keys_before = _secret_keys(prefix)
        _change_one_grant_each(ids)
        changed = _pass(args.workers, len(ids), mode=args.mode, batch=args.batch, threads=args.threads)
        print(f"[workspaces] after one grant change each: {changed}")
        keys_after = _secret_keys(prefix)
        steady = _pass(args.workers, len(ids), mode=args.mode, batch=args.batch, threads=args.threads)
        print(f"[workspaces] steady state: {steady}")
    finally:
        removed = _cleanup(prefix)
        print(f"[workspaces] removed {removed} namespaces")
    result = {
        "workspaces": len(ids),
        "owners": args.owners,
        "datasets_per_workspace": 2,
        "workers": args.workers,
        "mode": args.mode,
        "batch": args.batch,
        "threads": args.threads,
        "watch": not args.no_watch,
        "setup_s": setup_s,
        "from_scratch": scratch,
        "after_one_grant_change_each": changed,
        "steady_state": steady,
        "secrets_by_key_count": {"before_change": keys_before, "after_change": keys_after},
        "goal": "from scratch <= 60 s for 5,000 workspaces; steady state <= 1 s",
        "load_average_1_5_15": {"before": load_before, "after": _load_average()},
    }
    path = save(args.output, result)
    print(f"[workspaces] results in {path}")


if __name__ == "__main__":
    main()
