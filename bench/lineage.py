"""Lineage benchmark: OpenLineage ingestion over HTTP, propagation over a large graph, graph query latency.

1. Ingestion: POST ``--events`` generated RunEvents (START + COMPLETE pairs with schemas and column lineage)
   through ``/api/v1/lineage/batch`` (and a sample through the single-event endpoint); events/s.
2. Propagation: a generated graph of ``--datasets`` datasets and ``--edges`` edges (seeded with COPY straight
   into the lineage tables: ingesting 1M edges through the API would only re-measure step 1), in which one
   source has ``--downstream`` datasets downstream. Tag the source through the API and time until every
   affected dataset carries the tag (the Celery worker drains the change); remove the tag and time again.
3. Graph queries: ``GET /api/v1/lineage/graph`` depth 5 downstream from hub datasets: p50/p95/p99 on the
   ``sql`` backend, and on ``neo4j`` when ``--neo4j-url`` answers (after ``manage.py graph_rebuild``).

Goals (this machine, PostgreSQL): ingestion >= 500 events/s; propagation <= 10 s; graph p95 <= 100 ms.
Results: bench/results/lineage.json.

Heavy ingestion (``--workload heavy``, issue 18): 20,000 RunEvents of about 6.6 KB (START + COMPLETE pairs,
10-field schema facets on every dataset, column lineage on half the outputs) over 20,000 datasets in 10 layers:
2 concurrent single-event clients from an empty catalog, then batches of 500 on a fresh database. Goals:
single >= 300 events/s, batches >= 3,000 events/s. Merged into bench/results/lineage.json as ``ingestion_heavy``.

Usage: python bench/lineage.py [--events 100000] [--datasets 200000] [--edges 1000000] [--downstream 100000]
       python bench/lineage.py --phases propagation,graph [--database NAME]   (only those: no ingestion, no neo4j)
       python bench/lineage.py --workload heavy [--heavy-events 20000] [--heavy-single 4000] [--heavy-db NAME]
                               [--ingest queued]  (queued ingestion: answer and end-to-end rates)
                               [--server granian|gunicorn] [--celery-processes 1]  (the worker's processes)
       (in-process split of the heavy workload between web and worker: python bench/lineage_profile.py)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    REDIS_URL,
    RESULTS,
    bench_env,
    fresh_database,
    keepalive_posts,
    load,
    manage,
    map_in_processes,
    percentiles,
    processes,
    save,
)

NS = "postgres://warehouse:5432"
PRODUCER = "https://github.com/steward/bench"
COLUMNS = ["id", "email", "name", "country", "amount", "created_at", "status", "segment"]


def _token(env: dict[str, str]) -> str:
    out = manage(
        env,
        "shell",
        "-c",
        (
            "from django.contrib.auth.models import User, Group;"
            "from accounts.services import token_create;"
            "from catalog.services import tag_create;"
            "u=User.objects.create_user('bench');u.groups.add(Group.objects.get(name='admin'));"
            "tag_create(actor=u, key='pii.email', implied_level='C3');"
            "print(token_create(actor=u, user=u, name='bench')[1])"
        ),
    )
    return out.strip().splitlines()[-1]


def _dataset(name: str, rng: random.Random, columns_from: list[str] | None = None) -> dict:
    fields = rng.sample(COLUMNS, 5)
    facets: dict = {
        "schema": {"_producer": PRODUCER, "_schemaURL": "x", "fields": [{"name": f, "type": "varchar"} for f in fields]}
    }
    if columns_from:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "x",
            "fields": {
                f: {"inputFields": [{"namespace": NS, "name": src, "field": f} for src in columns_from]}
                for f in fields[:2]
            },
        }
    return {"namespace": NS, "name": name, "facets": facets}


def generate_events(count: int, rng: random.Random) -> list[dict]:
    """START/COMPLETE pairs of ``count // 2`` runs over a pool of datasets (so edges connect into a graph)."""
    events = []
    pool = max(100, count // 4)
    for i in range(count // 2):
        run_id = str(uuid.uuid4())
        job = {"namespace": "etl", "name": f"job_{i % (count // 6 or 1)}", "facets": {}}
        inputs = [f"bench.raw.t{rng.randrange(pool)}" for _ in range(2)]
        output = f"bench.mart.t{rng.randrange(pool)}"
        for j, kind in enumerate(("START", "COMPLETE")):
            events.append(
                {
                    "eventType": kind,
                    "eventTime": datetime.fromtimestamp(1_767_225_600 + i * 60 + j * 30, UTC).isoformat(),
                    "run": {"runId": run_id, "facets": {}},
                    "job": job,
                    "inputs": [_dataset(n, rng) for n in inputs],
                    "outputs": [_dataset(output, rng, inputs if kind == "COMPLETE" else None)],
                    "producer": PRODUCER,
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                }
            )
    return events


def bench_ingestion(base: str, headers: dict[str, str], count: int, batch: int) -> dict:
    rng = random.Random(11)
    events = generate_events(count, rng)
    session = requests.Session()
    session.headers.update(headers)
    t0 = time.perf_counter()
    for start in range(0, len(events), batch):
        res = session.post(f"{base}/api/v1/lineage/batch", json={"events": events[start : start + batch]}, timeout=600)
        res.raise_for_status()
        if (start // batch) % 20 == 0:
            print(f"[bench] ingested {start + batch:,}/{len(events):,}", flush=True)
    batch_s = time.perf_counter() - t0
    singles = generate_events(2000, random.Random(12))

    def one(s: requests.Session, i: int) -> None:
        s.post(f"{base}/api/v1/lineage", json=singles[i], timeout=60).raise_for_status()

    single = load(one, requests_total=len(singles), concurrency=2, headers=headers)
    return {
        "events": len(events),
        "batch_size": batch,
        "batch_events_per_s": round(len(events) / batch_s, 1),
        "single_event_endpoint": single,
    }


HEAVY_LAYERS = 10
HEAVY_FIELDS = [
    "customer_id",
    "customer_email",
    "customer_name",
    "billing_country",
    "order_amount_eur",
    "order_created_at",
    "order_status_code",
    "marketing_segment",
    "loyalty_tier_level",
    "last_updated_timestamp",
]


def _heavy_dataset(layer: int, k: int, with_columns_from: list[tuple[int, int]] | None = None) -> dict:
    """A dataset of the heavy shape: a 10-field schema facet, and column lineage from
    ``with_columns_from`` (every field from the same field of two of them)."""
    facets: dict = {
        "schema": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
            "fields": [{"name": f, "type": "VARCHAR" if i % 3 else "BIGINT"} for i, f in enumerate(HEAVY_FIELDS)],
        },
    }
    if with_columns_from:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                f: {
                    "inputFields": [
                        {
                            "namespace": NS,
                            "name": f"heavy.l{sl}.t{sk}",
                            "field": f,
                            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}],
                        }
                        for sl, sk in with_columns_from[:2]
                    ]
                }
                for f in HEAVY_FIELDS
            },
        }
    return {"namespace": NS, "name": f"heavy.l{layer}.t{k}", "facets": facets}


def generate_heavy_events(count: int, datasets: int = 20_000, seed: int = 21) -> list[dict]:
    """The heavy shape (issue 18): START + COMPLETE pairs of ``count // 2`` runs over ``datasets`` datasets in
    ``HEAVY_LAYERS`` layers; a run of layer L reads 3 datasets of layer L-1 and writes 2 of layer L; every
    dataset carries a 10-field schema facet, and one output of each COMPLETE (half the outputs) column lineage.
    Runs alternate between layers, so the first events already name datasets of every layer."""
    rng = random.Random(seed)
    width = datasets // HEAVY_LAYERS
    events = []
    for i in range(count // 2):
        layer = 1 + i % (HEAVY_LAYERS - 1)
        slot = i // (HEAVY_LAYERS - 1)
        run_id = str(uuid.uuid4())
        job = {
            "namespace": "etl",
            "name": f"heavy_l{layer}_job_{slot % (width // 4)}",
            "facets": {
                "jobType": {"_producer": PRODUCER, "_schemaURL": "x", "processingType": "BATCH", "jobType": "QUERY"},
                "sql": {
                    "_producer": PRODUCER,
                    "_schemaURL": "x",
                    "query": f"INSERT INTO heavy.l{layer}.t{(2 * slot) % width} SELECT "
                    + ", ".join(HEAVY_FIELDS)
                    + f" FROM heavy.l{layer - 1}.t{slot % width}",
                },
            },
        }
        inputs = [(layer - 1, rng.randrange(width)) for _ in range(3)]
        outputs = [(layer, (2 * slot) % width), (layer, (2 * slot + 1) % width)]
        for j, kind in enumerate(("START", "COMPLETE")):
            events.append(
                {
                    "eventType": kind,
                    "eventTime": datetime.fromtimestamp(1_767_225_600 + i * 60 + j * 30, UTC).isoformat(),
                    "run": {
                        "runId": run_id,
                        "facets": {
                            "nominalTime": {
                                "_producer": PRODUCER,
                                "_schemaURL": "x",
                                "nominalStartTime": datetime.fromtimestamp(1_767_225_600 + i * 60, UTC).isoformat(),
                            }
                        },
                    },
                    "job": job,
                    "inputs": [_heavy_dataset(lay, k) for lay, k in inputs],
                    "outputs": [
                        _heavy_dataset(*outputs[0], inputs if kind == "COMPLETE" else None),
                        _heavy_dataset(*outputs[1]),
                    ],
                    "producer": PRODUCER,
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                }
            )
    return events


def _client_process(args: tuple[str, str, str, list[bytes], int | None, float]) -> tuple[list[float], list[str]]:
    """One producer: POST each body in turn on one keep-alive connection; latencies (ms) and errors."""
    base, path, secret, bodies, expected, start_at = args
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    for ms, status, data in keepalive_posts(base, path, headers, bodies, start_at):
        latencies.append(ms)
        if status >= 300 or (expected and status != expected):
            errors.append(f"{status} {data[:200]!r}")
    return latencies, errors


def _post_from_processes(
    base: str, path: str, secret: str, per_client: list[list[bytes]], expected: int | None
) -> tuple[list[float], list[str]]:
    """One client process per list of bodies, all starting together."""
    start_at = time.time() + 0.5
    chunks = [(base, path, secret, bodies, expected, start_at) for bodies in per_client]
    results = map_in_processes(_client_process, chunks)
    return [ms for lat, _ in results for ms in lat], [e for _, errs in results for e in errs]


def _wait_applied(db_url: str, t0: float, expected: int, timeout: float = 1800) -> dict:
    """Queued ingestion: wait until the inbox holds no pending event; the end-to-end figures from ``t0`` (the
    first request) to then, and whether every event was applied exactly once."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (pending,) = conn.execute("SELECT count(*) FROM lineage_inboxevent WHERE state = 'pending'").fetchone()
            if pending == 0:
                break
            time.sleep(0.1)
        done = time.perf_counter() - t0
        (failed,) = conn.execute("SELECT count(*) FROM lineage_inboxevent WHERE state = 'failed'").fetchone()
        (stored,) = conn.execute("SELECT count(*) FROM lineage_lineageevent").fetchone()
    return {
        "applied_per_s": round(expected / done, 1),
        "all_applied_after_s": round(done, 2),
        "pending_left": pending,
        "failed": failed,
        "events_stored": stored,
        "events_expected": expected,
    }


def bench_ingestion_heavy(
    env: dict[str, str],
    url: str,
    count: int,
    single: int,
    batch: int,
    mode: str = "direct",
    server: str = "granian",
    celery_processes: int = 1,
) -> dict:
    """The heavy workload (issue 18), each phase on a fresh database: ``single`` events through the single-event
    endpoint from 2 concurrent clients (from an empty catalog: the clients create the datasets as they go), then
    all ``count`` events through ``/lineage/batch`` in batches of ``batch``.

    ``mode="queued"``: the server runs with ``STEWARD_LINEAGE_INGEST=queued`` (answers 202 once the events are
    stored in the inbox; the worker's drain applies them); besides the answer rate, each phase reports when the
    last event was applied (``applied_per_s``, end to end) and checks every event was stored once.

    ``server``: granian as scripts/run.sh serves (2 workers x 4 blocking threads: HTTP parsed in Rust) or
    gunicorn as ``STEWARD_WEB_SERVER=gunicorn`` serves (gthread, 2 workers x 4 threads). ``celery_processes``: the
    Celery worker's processes (more than one: queued drains run side by side, each on its own batches)."""
    import json
    import os

    env = {**env, "STEWARD_LINEAGE_INGEST": mode}
    expected = 202 if mode == "queued" else None

    events = generate_heavy_events(count)
    size = sum(len(json.dumps(e)) for e in events) / len(events)
    print(f"[bench] heavy: {len(events):,} events, {size / 1024:.1f} KB each on average", flush=True)
    out: dict = {
        "events": len(events),
        "mean_event_bytes": round(size),
        "datasets": 20_000,
        "layers": HEAVY_LAYERS,
        "ingest": mode,
        "server": server,
        "celery_processes": celery_processes,
    }

    def phase_db() -> dict[str, str]:
        db_url = fresh_database(url.rsplit("/", 1)[1])
        phase_env = {**env, "DATABASE_URL": db_url}
        manage(phase_env, "migrate", "-v0")
        return phase_env

    phase_env = phase_db()
    secret = _token(phase_env)
    # Each client's events, encoded beforehand (a producer serialises its own events, on its own machine): client c
    # sends runs c, c + 2, ... so both create the same new datasets at once.
    runs = [events[i : i + 2] for i in range(0, single, 2)]
    per_client = [[json.dumps(e).encode() for pair in runs[c::2] for e in pair] for c in range(2)]
    singles = [b for chunk in per_client for b in chunk]
    # As scripts/run.sh serves (granian, 2 workers x 4 threads: keep-alive), or gunicorn gthread, with the worker.
    serve = {
        "worker_class": "gthread",
        "web_workers": 2,
        "threads": 4,
        "server": server,
        "celery_processes": celery_processes,
    }
    with processes(phase_env, **serve) as base:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        latencies, errors = _post_from_processes(base, "/api/v1/lineage", secret, per_client, expected)
        elapsed = time.perf_counter() - t0
        result = {**percentiles(latencies), "requests": len(latencies)}
        out["single_event_endpoint"] = {
            **result,
            "events_per_s": round(len(singles) / elapsed, 1),
            "clients": "2 processes, http.client keep-alive, bodies encoded beforehand",
            "server": f"{server} 2 workers x 4 threads + Celery worker (solo)",
            "errors": len(errors),
            "first_errors": errors[:3],
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
        print(
            f"[bench] heavy single: {out['single_event_endpoint']['events_per_s']} events/s, p50 "
            f"{result['p50_ms']} ms, p95 {result['p95_ms']} ms, errors {len(errors)}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if mode == "queued":
            applied = _wait_applied(phase_env["DATABASE_URL"], t0, len(singles))
            out["single_event_endpoint"].update(applied)
            print(f"[bench] heavy single, queued: {applied}", flush=True)

    phase_env = phase_db()
    headers = {"Authorization": f"Bearer {_token(phase_env)}"}
    with processes(phase_env, **serve) as base:
        session = requests.Session()
        session.headers.update(headers)
        load_before = os.getloadavg()
        calls: list[float] = []
        t0 = time.perf_counter()
        for start in range(0, len(events), batch):
            c0 = time.perf_counter()
            res = session.post(
                f"{base}/api/v1/lineage/batch", json={"events": events[start : start + batch]}, timeout=600
            )
            res.raise_for_status()
            if expected and res.status_code != expected:
                raise RuntimeError(f"expected {expected}, got {res.status_code}: {res.text[:200]}")
            calls.append((time.perf_counter() - c0) * 1000)
        elapsed = time.perf_counter() - t0
        out["batch"] = {
            "batch_size": batch,
            "events_per_s": round(len(events) / elapsed, 1),
            **percentiles(calls),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
        rate = out["batch"]["events_per_s"]
        print(f"[bench] heavy batch: {rate} events/s, load {os.getloadavg()[0]:.2f}", flush=True)
        if mode == "queued":
            applied = _wait_applied(phase_env["DATABASE_URL"], t0, len(events))
            out["batch"].update(applied)
            print(f"[bench] heavy batch, queued: {applied}", flush=True)
    return out


def _copy(conn: psycopg.Connection, table: str, columns: list[str], rows) -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed_graph(url: str, datasets: int, edges: int, downstream: int, rng: random.Random) -> tuple[str, list[str]]:
    """Layered DAG: the source's region of ``downstream`` datasets, the rest a separate region; returns the
    source name and a few hub names (a node in the third layer)."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(datasets)]
    # Region A: layers growing 10x from the source until ``downstream`` nodes; region B: the rest.
    layers: list[list[int]] = [[0]]
    placed = 1
    width = 10
    while placed < downstream + 1:
        size = min(width, downstream + 1 - placed)
        layers.append(list(range(placed, placed + size)))
        placed += size
        width *= 10
    b_nodes = list(range(placed, datasets))
    b_width = max(1, min(10_000, len(b_nodes) // 5))
    b_layers = [b_nodes[i : i + b_width] for i in range(0, len(b_nodes), b_width)]
    per_node = max(1, edges // datasets)
    pairs: set[tuple[int, int]] = set()
    for group in (layers, b_layers):
        for upper, lower in zip(group, group[1:], strict=False):
            for k, v in enumerate(lower):  # every node gets one parent
                pairs.add((upper[k % len(upper)], v))
            for u in upper:
                for _ in range(per_node):
                    pairs.add((u, rng.choice(lower)))
    while len(pairs) < edges:  # top up inside each region, always forward a layer (a DAG)
        group = layers if rng.random() < downstream / datasets or len(b_layers) < 2 else b_layers
        li = rng.randrange(len(group) - 1)
        pairs.add((rng.choice(group[li]), rng.choice(group[li + 1])))
    jobs = {v: uuid.uuid4() for _, v in pairs}
    with psycopg.connect(url) as conn:
        _copy(
            conn,
            "catalog_dataset",
            [
                "id",
                "namespace",
                "name",
                "platform",
                "description",
                "classification",
                "effective_classification",
                "properties",
                "created_at",
                "updated_at",
            ],
            ((ids[i], NS, f"g.t{i}", "postgres", "", "", "C1", "{}", now, now) for i in range(datasets)),
        )
        _copy(
            conn,
            "lineage_job",
            ["id", "namespace", "name", "facets", "latest_completed_at", "created_at", "updated_at"],
            ((j, "etl", f"build_t{v}", "{}", now, now, now) for v, j in jobs.items()),
        )
        _copy(
            conn,
            "lineage_edge",
            ["job_id", "source_id", "target_id", "valid_from"],
            ((jobs[v], ids[u], ids[v], now) for u, v in pairs),
        )
        conn.execute("ANALYZE")
    hubs = [f"g.t{i}" for i in layers[2][:20]] if len(layers) > 2 else ["g.t0"]
    print(f"[bench] seeded {datasets:,} datasets, {len(pairs):,} edges; layers {[len(x) for x in layers]}", flush=True)
    return "g.t0", hubs


def _count_tagged(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(DISTINCT dataset_id) FROM lineage_propagatedtag WHERE valid_to IS NULL"
        ).fetchone()[0]


def _wait_worker_idle(broker: redis.Redis, url: str) -> None:
    """Until the bench worker's queue (``bench_env``: one per database) is empty and nothing is pending or being
    taken in its coalesced search-indexing sets (``steward.tasks``): queued and running indexing both done."""
    queue = f"bench-{url.rsplit('/', 1)[-1]}"
    time.sleep(1)  # the drain queues its indexing just after it commits
    while broker.llen(queue) > 0 or broker.keys(f"steward:coalesce:{queue}:search_index:*"):
        time.sleep(0.5)


def bench_propagation(base: str, headers: dict[str, str], url: str, source: str, expected: int) -> dict:
    session = requests.Session()
    session.headers.update(headers)
    ds = session.get(f"{base}/api/v1/datasets/lookup", params={"namespace": NS, "name": source}, timeout=60).json()
    t0 = time.perf_counter()
    session.post(f"{base}/api/v1/datasets/{ds['id']}/tags", json={"key": "pii.email"}, timeout=600).raise_for_status()
    while _count_tagged(url) < expected:
        time.sleep(0.2)
    add_s = time.perf_counter() - t0
    print(f"[bench] tag reached {expected:,} datasets in {add_s:.1f} s", flush=True)
    # The worker then re-indexes the reclassified datasets for search; let that backlog clear first (the removal's
    # drain would otherwise wait behind it on the one worker).
    t_idx = time.perf_counter()
    broker = redis.Redis.from_url(REDIS_URL)
    _wait_worker_idle(broker, url)
    index_s = time.perf_counter() - t_idx
    t1 = time.perf_counter()
    session.delete(f"{base}/api/v1/datasets/{ds['id']}/tags/pii.email", timeout=600).raise_for_status()
    while _count_tagged(url) > 0:
        time.sleep(0.2)
    remove_s = time.perf_counter() - t1
    print(f"[bench] tag withdrawn from {expected:,} datasets in {remove_s:.1f} s", flush=True)
    _wait_worker_idle(broker, url)  # the re-indexing again: graph queries should not compete with it
    return {
        "affected_datasets": expected,
        "tag_add_s": round(add_s, 2),
        "tag_remove_s": round(remove_s, 2),
        "search_reindex_backlog_s": round(index_s, 1),
    }


def bench_graph(base: str, headers: dict[str, str], hubs: list[str], requests_total: int) -> dict:
    sizes = []

    def call(s: requests.Session, i: int) -> None:
        res = s.get(
            f"{base}/api/v1/lineage/graph",
            params={"namespace": NS, "name": hubs[i % len(hubs)], "direction": "downstream", "depth": 5},
            timeout=60,
        )
        res.raise_for_status()
        if i < len(hubs):
            sizes.append(len(res.json()["nodes"]))

    out = load(call, requests_total=requests_total, concurrency=2, headers=headers)
    return {**out, "nodes_per_answer": sorted(sizes)}


def _wipe_neo4j(url: str) -> None:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(url, auth=None) as driver:
        for query in (
            "MATCH ()-[r]->() WITH r LIMIT 20000 DELETE r RETURN count(*) AS n",
            "MATCH (n) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS n",
        ):
            while driver.execute_query(query).records[0]["n"]:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--datasets", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--downstream", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--neo4j-url", default="bolt://127.0.0.1:57687")
    parser.add_argument(
        "--workload",
        choices=["standard", "heavy"],
        default="standard",
        help="heavy: only the heavy ingestion workload (issue 18), merged into bench/results/lineage.json",
    )
    parser.add_argument(
        "--phases",
        default="ingestion,propagation,graph,neo4j",
        help="comma-separated, of ingestion, propagation, graph (sql backend), neo4j; e.g. --phases propagation,graph"
        " seeds the graph once and measures only those (results merged into bench/results/lineage.json)",
    )
    parser.add_argument(
        "--database", default="steward_bench_lineage", help="name of the throw-away database (dropped and created)"
    )
    parser.add_argument("--heavy-events", type=int, default=20_000)
    parser.add_argument("--heavy-single", type=int, default=4_000, help="events sent through the single endpoint")
    parser.add_argument(
        "--ingest",
        choices=["direct", "queued"],
        default="direct",
        help="heavy workload: STEWARD_LINEAGE_INGEST of the server (queued: also when the last event was applied); "
        "results as ingestion_heavy or ingestion_heavy_queued",
    )
    parser.add_argument(
        "--heavy-db",
        default="steward_bench_lineage_heavy",
        help="name of the throw-away database of the heavy workload (dropped and created; one per concurrent run)",
    )
    parser.add_argument(
        "--server", choices=["gunicorn", "granian"], default="granian", help="heavy workload's server (as served)"
    )
    parser.add_argument(
        "--celery-processes", type=int, default=1, help="heavy workload's Celery worker processes (queued drains)"
    )
    args = parser.parse_args()
    result: dict = {}
    if args.workload == "heavy":
        import json

        url = fresh_database(args.heavy_db)  # not the standard run's: another may be running
        heavy = bench_ingestion_heavy(
            bench_env(url),
            url,
            args.heavy_events,
            args.heavy_single,
            args.batch,
            args.ingest,
            args.server,
            args.celery_processes,
        )
        previous = RESULTS / "lineage.json"
        merged = json.loads(previous.read_text()) if previous.exists() else {}
        merged = {k: v for k, v in merged.items() if k not in ("benchmark", "at", "machine")}
        key = (
            "ingestion_heavy"
            + ("" if args.ingest == "direct" else "_queued")
            + ("" if args.server == "gunicorn" else f"_{args.server}")
            + ("" if args.celery_processes == 1 else f"_celery{args.celery_processes}")
        )
        path = save("lineage", {**merged, key: heavy})
        print(f"[bench] saved {path}")
        fresh_database(args.heavy_db)
        return

    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = phases - {"ingestion", "propagation", "graph", "neo4j"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if "ingestion" in phases:
        url = fresh_database(args.database)
        env = bench_env(url)
        print("[bench] migrating a fresh database", flush=True)
        manage(env, "migrate", "-v0")
        headers = {"Authorization": f"Bearer {_token(env)}"}
        with processes(env) as base:
            result["ingestion"] = bench_ingestion(base, headers, args.events, args.batch)
            print(
                f"[bench] ingestion: {result['ingestion']['batch_events_per_s']:,} events/s (batches), single "
                f"p95 {result['ingestion']['single_event_endpoint']['p95_ms']} ms",
                flush=True,
            )
    if not phases & {"propagation", "graph", "neo4j"}:
        _save_merged(result, partial=phases != {"ingestion", "propagation", "graph", "neo4j"})
        fresh_database(args.database)
        return

    url = fresh_database(args.database)
    env = bench_env(url)
    manage(env, "migrate", "-v0")
    headers = {"Authorization": f"Bearer {_token(env)}"}
    source, hubs = seed_graph(url, args.datasets, args.edges, args.downstream, random.Random(5))
    if phases & {"propagation", "graph"}:
        with processes(env) as base:
            if "propagation" in phases:
                load_before = os.getloadavg()
                result["propagation"] = {
                    "datasets": args.datasets,
                    "edges": args.edges,
                    **bench_propagation(base, headers, url, source, args.downstream),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                }
            if "graph" in phases:
                load_before = os.getloadavg()
                result["graph_sql"] = {
                    **bench_graph(base, headers, hubs, args.requests),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                }
                print(f"[bench] graph (sql) depth 5: p95 {result['graph_sql']['p95_ms']} ms", flush=True)
    neo_env = bench_env(url, STEWARD_GRAPH_BACKEND="neo4j", STEWARD_NEO4J_URL=args.neo4j_url)
    try:
        if "neo4j" not in phases:
            raise _Skipped
        t0 = time.perf_counter()
        manage(neo_env, "graph_rebuild")
        rebuild_s = time.perf_counter() - t0
    except _Skipped:
        pass
    except Exception as exc:
        print(f"[bench] neo4j not measured: {exc}", flush=True)
    else:
        with processes(neo_env, celery=False) as base:
            result["graph_neo4j"] = {
                "rebuild_s": round(rebuild_s, 1),
                **bench_graph(base, headers, hubs, args.requests),
            }
            print(f"[bench] graph (neo4j) depth 5: p95 {result['graph_neo4j']['p95_ms']} ms", flush=True)
        _wipe_neo4j(args.neo4j_url)  # the projection of a dropped database would only confuse the next user
    _save_merged(result, partial=phases != {"ingestion", "propagation", "graph", "neo4j"})
    fresh_database(args.database)


class _Skipped(Exception):
    """A phase left out by ``--phases``."""


def _save_merged(result: dict, *, partial: bool) -> None:
    """Save the results; a run of some phases only keeps the other phases' figures of the last full run."""
    import json

    previous = RESULTS / "lineage.json"
    merged = json.loads(previous.read_text()) if partial and previous.exists() else {}
    merged = {k: v for k, v in merged.items() if k not in ("benchmark", "at", "machine")}
    path = save("lineage", {**merged, **result})
    print(f"[bench] saved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
