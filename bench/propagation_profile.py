"""In-process profile of propagation and of the graph view (issue 18): where the time of one drain goes.

On a throw-away PostgreSQL database seeded like ``bench/lineage.py`` (``seed_graph``: a layered DAG, one source
whose region has ``--downstream`` datasets, no column lineage), the source is tagged through the catalog service
and one ``lineage.propagation.drain()`` runs in-process, commit included; then the tag is removed and the
drain runs again. Each drain prints its steps (named functions timed by wrappers: region and walk, propagated
rows, effective classification, its history rows, grants, search queueing, model versions, commit) and the SQL
statements that took the most time. Then ``--graph`` requests of the graph view (depth 5 downstream from the
bench's hubs) through the Django test client: p50/p95 and queries per request.

No timed assertions: figures for docs/benchmarks.md (the load average is printed beside them).

Usage: python bench/propagation_profile.py [--datasets 200000] [--edges 1000000] [--downstream 100000]
       [--graph 200] [--db NAME] [--keep] [--cprofile] [--graph-only]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, database_url, fresh_database
from bench.lineage import NS, seed_graph

_STEPS: dict[str, float] = defaultdict(float)


def _timed(module: Any, name: str, label: str) -> None:
    """Wrap ``module.name`` so that its time adds up under ``label`` (outermost call only)."""
    inner = getattr(module, name, None)
    if inner is None:  # another version of the code (an A/B run)
        return
    depth = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth["n"] += 1
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            depth["n"] -= 1
            if depth["n"] == 0:
                _STEPS[label] += time.perf_counter() - t0

    setattr(module, name, wrapper)


def _instrument() -> None:
    import catalog.services.classification as classification
    import governance.services.grants as grants
    import ledger.history as history
    import lineage.propagation as propagation
    import lineage.services.models as lineage_models

    _timed(history, "write_many", "history rows (ledger.history)")
    _timed(history, "write_shared", "history rows (ledger.history)")
    _timed(grants, "on_reclassified", "grants and requests (on_reclassified)")
    _timed(propagation, "dataset_recompute_effective", "effective classification, all of it")
    _timed(classification, "_recompute_batch", "effective classification: dataset rows")
    _timed(propagation, "index_later", "search queueing (index_later)")
    _timed(lineage_models, "model_versions_reading", "model versions")
    _timed(lineage_models, "model_versions_refresh", "model versions")
    _timed(propagation, "_after_write", "after the write (all consequences)")
    _timed(propagation, "recompute", "recompute (all)")


def _setup(db: str, reuse: bool = False) -> str:
    url = database_url(db) if reuse else fresh_database(db)
    os.environ.update(bench_env(url))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


@contextmanager
def _statements() -> Iterator[list[dict]]:
    """The statements run inside the block (the list fills when the block ends)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.queries_log.clear()  # a deque of 9,000: a count is only right from empty
    captured: list[dict] = []
    with CaptureQueriesContext(connection) as queries:
        yield captured
    captured.extend(queries.captured_queries)


def _top(captured: list[dict], top: int = 12) -> None:
    by: dict[str, list[float]] = defaultdict(list)
    for q in captured:
        shape = re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "$n", q["sql"])
        shape = re.sub(r"\s+", " ", re.sub(r"(\$n, )+\$n", "$n...", shape))[:150]
        by[shape].append(float(q["time"]))
    total = sum(sum(v) for v in by.values())
    print(f"[profile]   {len(captured)} statements, {total:.2f} s in the database; the slowest:")
    for shape, times in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:top]:
        print(f"    {sum(times):7.2f} s {len(times):5d}x  {shape}")


def _drain(label: str, profile: bool) -> dict:
    from django.db import connection

    import lineage.propagation as propagation

    _STEPS.clear()
    prof = cProfile.Profile() if profile else None
    load = os.getloadavg()[0]
    commit = {"s": 0.0}
    real_drain = propagation._drain

    with _statements() as captured:
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        # drain() commits per group of changes: time the commit by hooking the atomic block's exit.
        orig_commit = connection.commit

        def timed_commit() -> None:
            c0 = time.perf_counter()
            orig_commit()
            commit["s"] += time.perf_counter() - c0

        connection.commit = timed_commit  # type: ignore[method-assign]
        try:
            result = real_drain(5_000)
        finally:
            connection.commit = orig_commit  # type: ignore[method-assign]
        if prof:
            prof.disable()
        elapsed = time.perf_counter() - t0
    steps = {k: round(v, 2) for k, v in sorted(_STEPS.items(), key=lambda kv: -kv[1])}
    steps["commit"] = round(commit["s"], 2)
    out = {"drain_s": round(elapsed, 2), "result": vars(result), "steps_s": steps, "load": round(load, 2)}
    print(f"[profile] {label}: one drain {elapsed:.2f} s (load {load:.2f}), {vars(result)}", flush=True)
    for name, secs in steps.items():
        print(f"    {secs:7.2f} s  {name}")
    _top(captured)
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(40)
        print(text.getvalue(), flush=True)
    return out


def _graph(hubs: list[str], requests_total: int, user: Any, profile: bool = False) -> dict:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    times: list[float] = []
    queries: list[int] = []
    nodes: set[int] = set()
    cpu0 = time.process_time()
    for i in range(requests_total):
        with _statements() as captured:
            t0 = time.perf_counter()
            res = client.get(
                "/api/v1/lineage/graph",
                {"namespace": NS, "name": hubs[i % len(hubs)], "direction": "downstream", "depth": 5},
            )
            times.append((time.perf_counter() - t0) * 1000)
        assert res.status_code == 200, res.content[:300]
        queries.append(len(captured))
        nodes.add(len(res.json()["nodes"]))
    cpu_ms = (time.process_time() - cpu0) * 1000 / requests_total  # this process's CPU: less sensitive to load
    times.sort()
    out = {
        "requests": requests_total,
        "cpu_ms_per_request": round(cpu_ms, 1),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "queries_per_request": round(sum(queries) / len(queries), 1),
        "nodes_per_answer": sorted(nodes),
        "load": round(os.getloadavg()[0], 2),
    }
    print(f"[profile] graph view depth 5, in-process: {out}", flush=True)
    if profile:  # where a request's time goes, over as many requests again
        prof = cProfile.Profile()
        prof.enable()
        for i in range(requests_total):
            client.get(
                "/api/v1/lineage/graph",
                {"namespace": NS, "name": hubs[i % len(hubs)], "direction": "downstream", "depth": 5},
            )
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
        print(text.getvalue(), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--downstream", type=int, default=100_000)
    parser.add_argument("--graph", type=int, default=200, help="graph view requests (0: none)")
    parser.add_argument("--db", default="steward_bench_propagation_profile")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (to explain queries)")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument(
        "--graph-only",
        action="store_true",
        help="only the graph view requests, on the database a --keep run left (no seeding, no drains; kept)",
    )
    args = parser.parse_args()
    url = _setup(args.db, reuse=args.graph_only)
    if args.graph_only:
        from django.contrib.auth.models import User

        from steward.gctune import tune

        tune()  # the collector as the web workers run it (steward/wsgi.py)
        hubs = [f"g.t{i}" for i in range(11, 31)]  # seed_graph's hubs: the first 20 of its third layer
        _graph(hubs, args.graph, User.objects.get(username="bench"), args.cprofile)
        return

    from django.contrib.auth.models import Group, User

    from catalog.models import Dataset
    from catalog.services import dataset_tag_add, dataset_tag_remove, tag_create

    user = User.objects.create_user("bench")
    user.groups.add(Group.objects.get(name="admin"))
    actor = user
    tag_create(actor=actor, key="pii.email", implied_level="C3")
    t0 = time.perf_counter()
    source, hubs = seed_graph(url, args.datasets, args.edges, args.downstream, random.Random(5))
    print(f"[profile] seeded in {time.perf_counter() - t0:.1f} s", flush=True)
    _instrument()
    dataset = Dataset.objects.get(namespace=NS, name=source)
    try:
        dataset_tag_add(actor=actor, dataset=dataset, key="pii.email")
        _drain("tag added", args.cprofile)
        dataset_tag_remove(actor=actor, dataset=dataset, key="pii.email")
        _drain("tag removed", args.cprofile)
        if args.graph:
            _graph(hubs, args.graph, user, args.cprofile)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            fresh_database(args.db)


if __name__ == "__main__":
    main()
