"""How propagation and graph queries grow with the graph: end to end, on generated graphs seeded with COPY.

Each size is a fresh database seeded like ``bench/lineage.py`` (a layered DAG; one source whose region has
``downstream`` datasets, the rest a separate region; about 5 edges per dataset):

- propagation: tag the source through the API and time until every dataset of its region carries the tag
  (the Celery worker drains the change), then remove it (``bench.lineage.bench_propagation``);
- graph: ``GET /api/v1/lineage/graph`` depth 5 downstream from 20 hubs, 2 clients, ``sql`` backend
  (``bench.lineage.bench_graph``); the answer is capped at the nearest 500 datasets.

Then a least-squares fit of log(time) on log(size) per series: an exponent near 1 is linear in the region
touched, near 0 independent of the graph's size. The load average is recorded beside every figure.

Results: bench/results/growth.json (``--out``). Usage:
  python bench/growth.py [--sizes 20000:100000:10000,200000:1000000:100000,...] [--requests 400] [--database NAME]
(each size is datasets:edges:downstream; a size whose seeding fails is reported and skipped). A smoke run at tiny
sizes that leaves the results alone: python bench/growth.py --sizes 2000:10000:1000,4000:20000:2000 --requests 20
--out growth_smoke --fresh
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import RESULTS, bench_env, fresh_database, manage, processes, save
from bench.lineage import _token, bench_graph, bench_propagation, seed_graph

DEFAULT_SIZES = "20000:100000:10000,200000:1000000:100000,1000000:5000000:500000,1200000:6000000:1000000"


def fit(points: list[tuple[float, float]]) -> dict[str, float] | None:
    """Least squares on log-log: time = a * size^k; returns k, a and r^2."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    k = sxy / sxx
    a = my - k * mx
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    ss_res = sum((y - (a + k * x)) ** 2 for x, y in pts)
    return {"exponent": round(k, 3), "coefficient": math.exp(a), "r2": round(1 - ss_res / ss_tot, 4) if ss_tot else 1.0}


def one_size(datasets: int, edges: int, downstream: int, requests_total: int, graph: bool, database: str) -> dict:
    url = fresh_database(database)
    env = bench_env(url)
    manage(env, "migrate", "-v0")
    headers = {"Authorization": f"Bearer {_token(env)}"}
    t0 = time.perf_counter()
    source, hubs = seed_graph(url, datasets, edges, downstream, random.Random(5))
    out: dict = {
        "datasets": datasets,
        "edges": edges,
        "downstream": downstream,
        "seed_s": round(time.perf_counter() - t0, 1),
    }
    with processes(env) as base:
        load_before = os.getloadavg()
        out["propagation"] = {
            **bench_propagation(base, headers, url, source, downstream),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        }
        print(f"[growth] {downstream:,} downstream: {out['propagation']}", flush=True)
        if graph:
            load_before = os.getloadavg()
            result = bench_graph(base, headers, hubs, requests_total)
            out["graph_sql"] = {
                **{k: v for k, v in result.items() if k != "nodes_per_answer"},
                "nodes_per_answer": sorted(set(result["nodes_per_answer"])),
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
            }
            print(f"[growth] {edges:,} edges: graph {out['graph_sql']}", flush=True)
    return out


def summarize(runs: list[dict]) -> dict:
    prop_add = [(r["downstream"], r["propagation"]["tag_add_s"]) for r in runs if "propagation" in r]
    prop_remove = [(r["downstream"], r["propagation"]["tag_remove_s"]) for r in runs if "propagation" in r]
    graph = [(r["edges"], r["graph_sql"]["p50_ms"]) for r in runs if "graph_sql" in r]
    graph95 = [(r["edges"], r["graph_sql"]["p95_ms"]) for r in runs if "graph_sql" in r]
    return {
        "propagation_add_vs_downstream": fit(prop_add),
        "propagation_remove_vs_downstream": fit(prop_remove),
        "graph_p50_vs_edges": fit(graph),
        "graph_p95_vs_edges": fit(graph95),
    }


def describe(fits: dict) -> list[str]:
    """One line per fitted series: time ~ size^k, and what k says."""
    lines = []
    for name, f in fits.items():
        if f is None:
            lines.append(f"{name}: fewer than two sizes measured, no fit")
            continue
        k = f["exponent"]
        shape = "about linear" if 0.85 <= k <= 1.15 else "sublinear" if k < 0.85 else "superlinear"
        if k < 0.25:
            shape = "nearly independent of size"
        lines.append(f"{name}: time ~ size^{k} (r^2 {f['r2']}): {shape}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--no-graph-above", type=int, default=5_000_000, help="skip graph queries above this")
    parser.add_argument("--database", default="steward_bench_growth", help="throw-away database (dropped, created)")
    parser.add_argument("--out", default="growth", help="results name: bench/results/<out>.json")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs saved before (else merged by size)")
    args = parser.parse_args()
    path = RESULTS / f"{args.out}.json"
    runs: list[dict] = json.loads(path.read_text()).get("runs", []) if path.exists() and not args.fresh else []
    for spec in args.sizes.split(","):
        datasets, edges, downstream = (int(x) for x in spec.split(":"))
        try:
            run = one_size(datasets, edges, downstream, args.requests, edges <= args.no_graph_above, args.database)
        except Exception as exc:  # report how far we got
            print(f"[growth] {spec} not measured: {exc!r}", flush=True)
            continue
        runs = [r for r in runs if (r["datasets"], r["edges"], r["downstream"]) != (datasets, edges, downstream)]
        runs.append(run)
        runs.sort(key=lambda r: r["edges"])
        save(args.out, {"runs": runs, "fits": summarize(runs)})
    fits = summarize(runs)
    print(json.dumps(fits, indent=2))
    for line in describe(fits):
        print(f"[growth] {line}", flush=True)
    fresh_database(args.database)


if __name__ == "__main__":
    main()
