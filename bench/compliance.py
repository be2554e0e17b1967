"""Compliance benchmark: result records through ``POST /api/v1/results``, history rows, and reconstruction latency.

1. A fresh database. ``--history`` rows of ``catalog.dataset`` history: ``--history / --revisions`` datasets
   (``COPY`` into ``catalog_dataset``), each with ``--revisions`` states written by ``ledger.history.write``
   at increasing times (5,000 datasets per call, the bulk path: one ``COPY`` per call).
2. Over HTTP, as an admin: model ``scorer`` with ``--versions`` versions, each trained by an OpenLineage run that
   read 5 of those datasets; deployed in ``prod`` one after another (each a redeploy) and in ``staging`` a day
   ahead of prod, so at most times two deployments serve and records must name their environment.
3. ``--results`` records posted by a service account in calls of ``--batch`` (10,000) from ``--concurrency``
   client processes (bodies built before the clock starts): records/s and per-call latency; then one batch is
   re-sent (a no-op) and timed.
4. ``time_reconstruction``: ``GET /api/v1/compliance/reconstruct?result=<id>`` for ``--reconstruct`` random
   results, p50/p95/p99; skipped with a note while that route does not exist (404 from the router).

With ``--copy`` (for 10M-row scales), step 1 streams the history rows into one ``COPY`` (generated row by row,
never held in memory; the same rows history.write leaves, closed at the next state's start, without the dead
tuples of its closing UPDATEs; secondary indexes built after), step 3 posts only ``--results-http`` records
and a second streamed ``COPY`` adds the rest (each resolved to the deployment serving at its time).
``table_sizes`` reports rows, heap, TOAST and each index of both tables and the bytes per row.

Results: bench/results/compliance.json. Full scale (not the default, which is a quick run):
    python bench/compliance.py --scale 1000000          # or --results 1000000 --history 1000000
    python bench/compliance.py --scale 10000000 --copy --results-http 200000 --reconstruct 300
Usage: python bench/compliance.py [--scale N] [--results N] [--history N] [--revisions 20] [--versions 12]
                                  [--batch 10000] [--concurrency 2] [--workers 2] [--reconstruct 500]
                                  [--copy] [--results-http N]
Environment: STEWARD_BENCH_COMPLIANCE_DB (database name), STEWARD_BENCH_KEEP_DB=1 (keep it afterwards).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    bench_env,
    database_url,
    fresh_database,
    manage,
    map_in_processes,
    percentiles,
    processes,
    save,
)

DB = os.environ.get("STEWARD_BENCH_COMPLIANCE_DB", "steward_bench_compliance")
NS = "postgres://warehouse.internal:5432"
MODEL = "scorer"
RECONSTRUCT_PATH = "/api/v1/compliance/reconstruct"


# --- seeding ---------------------------------------------------------------------------------------------------------


def seed_datasets(url: str, count: int, now: datetime) -> None:
    """COPY ``count`` datasets (``warehouse.public.t00000`` ...) straight into ``catalog_dataset``."""
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            "COPY catalog_dataset (id, namespace, name, platform, description, classification,"
            " effective_classification, properties, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(count):
                copy.write_row(
                    (uuid.uuid4(), NS, f"warehouse.public.t{i:05d}", "postgres", "", "C2", "C2", "{}", now, now)
                )
        conn.commit()


# Runs inside ``manage.py shell``: every dataset gets REVISIONS states at increasing times, 5,000 datasets per
# history.write call (each call one COPY), all in the past so later real changes follow them.
HISTORY_SCRIPT = """
import json, time
from datetime import datetime, timedelta
from django.db import transaction
from catalog.history import DATASET
from catalog.models import Dataset
from ledger import history
revisions, start = REVISIONS, datetime.fromisoformat("START")
keys = [(str(pk), name) for pk, name in Dataset.objects.order_by("name").values_list("pk", "name")]
def state(name, r):
    return {"namespace": "NS", "name": name, "platform": "postgres", "description": f"{name}, revision {r}",
            "classification": "C3" if r % 7 == 6 else "C2", "owners": ["bench-admin"],
            "tags": ["pii.email"] if r % 5 == 4 else [], "properties": {"revision": r},
            "fields": [{"name": "id", "type": "bigint", "ordinal": 0, "description": "", "classification": "",
                        "tags": []},
                       {"name": f"col_{r}", "type": "text", "ordinal": 1, "description": "", "classification": "",
                        "tags": []}]}
t0 = time.perf_counter()
written = 0
for first in range(0, len(keys), 5000):
    chunk = keys[first:first + 5000]
    with transaction.atomic():
        for r in range(revisions):
            written += history.write(DATASET, {k: state(n, r) for k, n in chunk}, at=start + timedelta(days=r))
print(json.dumps({"rows": written, "seconds": round(time.perf_counter() - t0, 2)}))
"""


def seed_history(env: dict[str, str], *, revisions: int, start: datetime) -> dict:
    script = HISTORY_SCRIPT.replace("REVISIONS", str(revisions)).replace("START", start.isoformat())
    out = manage(env, "shell", "-c", script.replace('"NS"', json.dumps(NS)))
    return json.loads(out.strip().splitlines()[-1])


def _history_state(name: str, r: int) -> dict:
    """Revision ``r`` of dataset ``name`` (the same states as ``HISTORY_SCRIPT`` writes through history.write)."""
    return {
        "namespace": NS,
        "name": name,
        "platform": "postgres",
        "description": f"{name}, revision {r}",
        "classification": "C3" if r % 7 == 6 else "C2",
        "owners": ["bench-admin"],
        "tags": ["pii.email"] if r % 5 == 4 else [],
        "properties": {"revision": r},
        "fields": [
            {"name": "id", "type": "bigint", "ordinal": 0, "description": "", "classification": "", "tags": []},
            {"name": f"col_{r}", "type": "text", "ordinal": 1, "description": "", "classification": "", "tags": []},
        ],
    }


def _copy_text(value: str) -> str:
    """``value`` escaped for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@contextmanager
def _indexes_dropped(conn: psycopg.Connection, table: str) -> Iterator[dict[str, float]]:
    """Drop ``table``'s secondary indexes and foreign keys (not its primary key) for a bulk COPY, then build them
    again from their own definitions (a sort per index instead of 10M random inserts). Yields a dict that gets
    ``index_s``: the time the rebuild took."""
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    ).fetchall()
    fks = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    ).fetchall()
    for name, _ in fks:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.commit()
    timing: dict[str, float] = {}
    try:
        yield timing
    finally:
        conn.rollback()
        t0 = time.perf_counter()
        for _, ddl in indexes:
            conn.execute(ddl)
        for name, ddl in fks:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
        conn.commit()
        timing["index_s"] = round(time.perf_counter() - t0, 1)


def seed_history_copy(url: str, *, revisions: int, start: datetime) -> dict:
    """``revisions`` states of every dataset as ``catalog.dataset`` history rows, streamed into one ``COPY``
    (text format, generated row by row, never held in memory): each row closed at the next one's start, the
    last one open. The same rows history.write leaves, without the dead tuples of its closing UPDATEs."""
    from steward.canonical import canonical_text, digest_text

    stamps = [(start + timedelta(days=r)).isoformat() for r in range(revisions + 1)]
    # Each revision's canonical text once, with a placeholder for the name (names need no JSON escaping, and the
    # texts nothing COPY escapes: checked).
    marker = "@@NAME@@"
    templates = [canonical_text(_history_state(marker, r)) for r in range(revisions)]
    assert all(_copy_text(t) == t for t in templates)
    assert all(
        canonical_text(_history_state("warehouse.public.t00001", r))
        == templates[r].replace(marker, "warehouse.public.t00001")
        for r in range(revisions)
    )
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        keys = conn.execute("SELECT id::text, name FROM catalog_dataset ORDER BY id").fetchall()

        def lines() -> Iterator[str]:
            for key, name in keys:
                for r in range(revisions):
                    text = templates[r].replace(marker, name)
                    valid_to = stamps[r + 1] if r + 1 < revisions else "\\N"
                    yield f"catalog.dataset\t{key}\t{stamps[r]}\t{valid_to}\t{text}\t{digest_text(text)}\n"

        rows, timing = _copy_into(
            conn, "governance_historyrecord", "kind, key, valid_from, valid_to, state, digest", lines()
        )
    return _seeded(rows, t0, timing, "COPY (text, streamed), indexes built after")


def _copy_into(conn: psycopg.Connection, table: str, columns: str, lines: Iterator[str]) -> tuple[int, dict]:
    """Stream ``lines`` (COPY text rows) into ``table`` with its indexes dropped and rebuilt after; commits.
    Returns the rows written and the timing (``copy_s``, ``index_s``)."""
    t0 = time.perf_counter()
    rows = 0
    with _indexes_dropped(conn, table) as timing:
        with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            buf: list[str] = []
            for line in lines:
                buf.append(line)
                rows += 1
                if len(buf) >= 20_000:
                    copy.write("".join(buf))
                    buf.clear()
            copy.write("".join(buf))
        conn.commit()
        timing["copy_s"] = round(time.perf_counter() - t0, 2)
    return rows, timing


def _seeded(rows: int, t0: float, timing: dict, method: str) -> dict:
    return {
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 2),
        "copy_s": timing["copy_s"],
        "index_s": timing["index_s"],
        "method": method,
    }


def seed_results_copy(url: str, count: int, *, start: datetime, end: datetime, rng: random.Random) -> dict:
    """``count`` result records streamed into one ``COPY``, each resolved to the deployment serving at its time
    (90% prod / 10% staging, as the HTTP records), ids random. Indexes and foreign keys are built after."""
    span_us = int((end - start).total_seconds() * 1_000_000)
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        deployments = conn.execute(
            "SELECT d.id, d.model_version_id, v.model_id, d.environment, d.deployed_from, d.deployed_to "
            "FROM catalog_deployment d JOIN catalog_modelversion v ON v.id = d.model_version_id "
            "ORDER BY d.deployed_from"
        ).fetchall()
        user_id = conn.execute("SELECT id FROM auth_user WHERE username = 'scorer-bot'").fetchone()[0]
        by_env: dict[str, list[tuple]] = {}
        for row in deployments:
            by_env.setdefault(row[3], []).append(row)
        received = datetime.now(UTC).isoformat()

        def lines() -> Iterator[str]:
            n = 0
            for _ in range(count):
                while True:  # a time some deployment of the environment serves
                    at = start + timedelta(microseconds=rng.randrange(span_us))
                    env = "prod" if rng.random() < 0.9 else "staging"
                    serving = [d for d in by_env.get(env, []) if d[4] <= at and (d[5] is None or at < d[5])]
                    n += 1
                    if serving:
                        break
                d = serving[0]
                yield (
                    f"{uuid.UUID(int=rng.getrandbits(128), version=4)}\t{d[2]}\t{d[0]}\t{d[1]}\t{at.isoformat()}\t"
                    f"s3://requests/2027/{n:09d}.json\tsha256:{rng.getrandbits(256):064x}\t{received}\t{user_id}\n"
                )

        written, timing = _copy_into(
            conn,
            "catalog_resultrecord",
            "id, model_id, deployment_id, model_version_id, produced_at, input_ref, output_digest, received_at,"
            " received_by_id",
            lines(),
        )
    return _seeded(written, t0, timing, "COPY (text, streamed), indexes and foreign keys built after")


def make_token(env: dict[str, str], username: str, role: str) -> str:
    out = manage(
        env,
        "shell",
        "-c",
        (
            "from django.contrib.auth.models import User, Group;"
            "from accounts.services import token_create;"
            f"u=User.objects.create_user({username!r});u.groups.add(Group.objects.get_or_create(name={role!r})[0]);"
            "print(token_create(actor=u, user=u, name='bench')[1])"
        ),
    )
    return out.strip().splitlines()[-1]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def seed_registry(
    base: str, headers: dict[str, str], *, versions: int, datasets: int, first: datetime, last: datetime
) -> list[dict]:
    """Model ``scorer``, its versions (each with a training run) and their deployments; returns the deployments."""

    def post(path: str, body: dict) -> dict:
        res = requests.post(f"{base}{path}", json=body, headers=headers, timeout=120)
        if res.status_code >= 300:
            raise RuntimeError(f"POST {path}: HTTP {res.status_code}: {res.text[:400]}")
        return res.json()

    rng = random.Random(5)
    post("/api/v1/tags", {"key": "pii.email", "implied_level": "C3"})
    model = post("/api/v1/models", {"name": MODEL, "description": "Credit scorer", "owners": ["bench-admin"]})
    step = (last - first) / versions
    deployments = []
    for i in range(versions):
        live = first + step * i
        run_id = str(uuid.uuid4())
        trained = live - timedelta(days=2)
        inputs = [f"warehouse.public.t{j:05d}" for j in rng.sample(range(datasets), min(5, datasets))]
        post(
            "/api/v1/lineage",
            {
                "eventType": "COMPLETE",
                "eventTime": iso(trained),
                "run": {"runId": run_id, "facets": {}},
                "job": {"namespace": "ml", "name": "train-scorer", "facets": {}},
                "inputs": [{"namespace": NS, "name": name, "facets": {}} for name in inputs],
                "outputs": [{"namespace": "s3://models", "name": f"scorer/{i + 1}", "facets": {}}],
                "producer": "https://github.com/steward/bench",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            },
        )
        version = post(
            f"/api/v1/models/{model['id']}/versions",
            {"version": str(i + 1), "artifact_uri": f"s3://models/scorer/{i + 1}", "training_run": run_id},
        )
        for env, at in (("staging", live - timedelta(days=1)), ("prod", live)):
            deployments.append(
                post(
                    "/api/v1/deployments",
                    {"model_version": version["id"], "environment": env, "deployed_from": iso(at)},
                )
            )
    return deployments


def result_bodies(count: int, batch: int, *, start: datetime, end: datetime, rng: random.Random) -> list[bytes]:
    """``count`` records in bodies of ``batch``: times uniform over [start, end), 90% prod and 10% staging."""
    span_us = int((end - start).total_seconds() * 1_000_000)
    bodies = []
    for first in range(0, count, batch):
        records = []
        for n in range(first, min(count, first + batch)):
            at = start + timedelta(microseconds=rng.randrange(span_us))
            records.append(
                {
                    "model": MODEL,
                    "environment": "prod" if rng.random() < 0.9 else "staging",
                    "produced_at": iso(at),
                    "input_ref": f"s3://requests/2026/{n:08d}.json",
                    "output_digest": f"sha256:{rng.getrandbits(256):064x}",
                }
            )
        bodies.append(json.dumps({"records": records}).encode())
    return bodies


# --- load ------------------------------------------------------------------------------------------------------------

_BODIES: list[bytes] = []  # set before the client processes fork (shared, not pickled)


def _client(args: tuple[str, str, int, int, float]) -> tuple[list[float], int]:
    """One client process: POST its share of ``_BODIES`` on one keep-alive connection; latencies and created."""
    base, token, index, step, start_at = args
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    created = 0
    time.sleep(max(0.0, start_at - time.time()))
    for body in _BODIES[index::step]:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/results", body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        latencies.append((time.perf_counter() - t0) * 1000)
        if res.status not in (200, 201):
            raise RuntimeError(f"POST /api/v1/results: HTTP {res.status}: {data[:400]!r}")
        created += json.loads(data)["created"]
    conn.close()
    return latencies, created


def ingest(base: str, token: str, bodies: list[bytes], concurrency: int) -> dict:
    global _BODIES
    _BODIES = bodies
    start_at = time.time() + 1.0
    results = map_in_processes(_client, [(base, token, i, concurrency, start_at) for i in range(concurrency)])
    wall = time.time() - start_at
    latencies = [ms for lat, _ in results for ms in lat]
    created = sum(c for _, c in results)
    return {
        "per_call": percentiles(latencies),
        "calls": len(latencies),
        "created": created,
        "wall_s": round(wall, 2),
        "records_per_s": round(created / wall, 1),
    }


# --- reconstruction (the endpoint is being written elsewhere) ---------------------------------------------------------


def time_reconstruction(base: str, headers: dict[str, str], result_ids: list[str]) -> dict:
    """Time ``GET /api/v1/compliance/reconstruct?result=<id>`` for each id: p50/p95/p99 (ms).

    Skips, with a note, when the route does not exist yet: a 404 that is not Steward's JSON error body (which an
    existing endpoint returns for an unknown result)."""
    if not result_ids:
        return {"skipped": "no results to reconstruct"}
    session = requests.Session()
    session.headers.update(headers)
    probe = session.get(f"{base}{RECONSTRUCT_PATH}", params={"result": result_ids[0]}, timeout=120)
    if probe.status_code == 404:
        try:
            routed = probe.json().get("code") == "not_found"
        except ValueError:
            routed = False
        if not routed:
            note = f"{RECONSTRUCT_PATH} is not routed yet (404); reconstruction not timed"
            print(f"[bench] {note}", flush=True)
            return {"skipped": note}
    failed = probe if probe.status_code != 200 else None
    for rid in result_ids[:20]:  # warm caches and connections
        res = session.get(f"{base}{RECONSTRUCT_PATH}", params={"result": rid}, timeout=120)
        failed = failed or (res if res.status_code != 200 else None)
    latencies, sizes = [], []
    for rid in result_ids:
        if failed is not None:
            break
        t0 = time.perf_counter()
        res = session.get(f"{base}{RECONSTRUCT_PATH}", params={"result": rid}, timeout=120)
        latencies.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(res.content))
        failed = res if res.status_code != 200 else None
    if failed is not None:  # keep the rest of a long run's figures: report, do not raise
        note = f"{RECONSTRUCT_PATH} answered HTTP {failed.status_code}: {failed.text[:300]}"
        print(f"[bench] {note}", flush=True)
        return {"error": note}
    return {**percentiles(latencies), "requests": len(latencies), "mean_response_bytes": round(sum(sizes) / len(sizes))}


# --- main ------------------------------------------------------------------------------------------------------------


def table_sizes(url: str) -> dict[str, dict]:
    """Rows and on-disk bytes of the two big tables: heap, TOAST, each index, total, and bytes per row."""
    with psycopg.connect(url, autocommit=True) as conn:
        out = {}
        for table in ("catalog_resultrecord", "governance_historyrecord"):
            conn.execute(f"VACUUM ANALYZE {table}")
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            total, heap, toast = conn.execute(
                "SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid),"
                " COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)"
                " FROM pg_class c WHERE c.oid = %s::regclass",
                [table],
            ).fetchone()
            indexes = dict(
                conn.execute(
                    "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
                    " WHERE indrelid = %s::regclass ORDER BY 1",
                    [table],
                ).fetchall()
            )
            mb = 1_048_576
            out[table] = {
                "rows": rows,
                "mb_with_indexes": round(total / mb, 1),
                "heap_mb": round(heap / mb, 1),
                "toast_mb": round(toast / mb, 1),
                "index_mb": {name: round(size / mb, 1) for name, size in indexes.items()},
                "bytes_per_row": round(total / rows) if rows else None,
                "heap_bytes_per_row": round(heap / rows) if rows else None,
            }
        settings = conn.execute(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'governance_historyrecord'::regclass"
            " AND attname = 'state'"
        ).fetchone()
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'governance_historyrecord'::regclass"
        ).fetchone()[0]
        out["governance_historyrecord"]["storage"] = {
            "state_compression": {"": "default (pglz)", "l": "lz4", "p": "pglz"}.get(settings[1], settings[1]),
            "reloptions": options or [],
        }
        return out


def reconstruct_only(count: int, workers: int) -> None:
    """Time reconstructions on a database seeded and kept by an earlier run (a 10M seed takes tens of minutes:
    seed while the machine is busy, time when it is quiet)."""
    url = database_url(DB)
    env = bench_env(url)
    sizes = table_sizes(url)
    with psycopg.connect(url) as conn:
        ids = [
            str(r[0])
            for r in conn.execute("SELECT id FROM catalog_resultrecord ORDER BY random() LIMIT %s", [count]).fetchall()
        ]
    if not ids:
        raise SystemExit(f"{DB} holds no results: run once with STEWARD_BENCH_KEEP_DB=1 first")
    officer = make_token(env, f"bench-officer-{int(time.time())}", "compliance-officer")
    result: dict = {"tables": sizes}
    with processes(env, web_workers=workers) as base:
        load_rec = [round(x, 2) for x in os.getloadavg()]
        result["reconstruction"] = time_reconstruction(base, {"Authorization": f"Bearer {officer}"}, ids)
        result["reconstruction"]["load_average_before_after"] = [load_rec, [round(x, 2) for x in os.getloadavg()]]
    r = result["reconstruction"]
    if "p50_ms" in r:
        print(f"[bench] reconstruct: p50 {r['p50_ms']} p95 {r['p95_ms']} p99 {r['p99_ms']} ms, load {load_rec}")
    print(f"[bench] saved {save('compliance_reconstruct', result)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, help="sets both --results and --history (e.g. 1000000)")
    parser.add_argument("--results", type=int, help="result records to ingest (default 20,000)")
    parser.add_argument("--history", type=int, help="history rows to seed (default 20,000)")
    parser.add_argument("--revisions", type=int, default=20, help="history states per dataset")
    parser.add_argument("--versions", type=int, default=12, help="model versions (each deployed to prod, staging)")
    parser.add_argument("--batch", type=int, default=10_000, help="records per POST (at most 10,000)")
    parser.add_argument("--concurrency", type=int, default=2, help="client processes posting results")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--reconstruct", type=int, default=500, help="reconstructions to time")
    parser.add_argument(
        "--copy",
        action="store_true",
        help="seed history, and results beyond --results-http, with streamed COPY (for 10M-row scales)",
    )
    parser.add_argument(
        "--results-http",
        type=int,
        default=1_000_000,
        help="with --copy: how many results go through POST /api/v1/results (timed); the rest by COPY",
    )
    parser.add_argument(
        "--reconstruct-only",
        action="store_true",
        help="time reconstructions on the database an earlier run kept (STEWARD_BENCH_KEEP_DB=1): no seeding",
    )
    args = parser.parse_args()
    if args.reconstruct_only:
        reconstruct_only(args.reconstruct, args.workers)
        return
    results_n = args.results or args.scale or 20_000
    history_n = args.history or args.scale or 20_000
    datasets = max(1, history_n // args.revisions)
    rng = random.Random(17)
    now = datetime.now(UTC).replace(microsecond=0)

    url = fresh_database(DB)
    env = bench_env(url)
    print("[bench] migrating a fresh database", flush=True)
    manage(env, "migrate", "-v0")
    admin_token = make_token(env, "bench-admin", "admin")
    service_token = make_token(env, "scorer-bot", "service")

    seed_datasets(url, datasets, now - timedelta(days=800))
    load_before = [round(x, 2) for x in os.getloadavg()]
    if args.copy:
        hist = seed_history_copy(url, revisions=args.revisions, start=now - timedelta(days=700))
    else:
        hist = seed_history(env, revisions=args.revisions, start=now - timedelta(days=700))
    hist["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    hist.update(datasets=datasets, revisions=args.revisions, rows_per_s=round(hist["rows"] / hist["seconds"], 1))
    print(f"[bench] history: {hist['rows']:,} rows ({datasets:,} datasets x {args.revisions}) in {hist['seconds']}s")

    first, last = now - timedelta(days=360), now - timedelta(days=30)
    result: dict = {"history_seed": hist}
    with processes(env, web_workers=args.workers) as base:
        admin = {"Authorization": f"Bearer {admin_token}"}
        t0 = time.perf_counter()
        deployments = seed_registry(base, admin, versions=args.versions, datasets=datasets, first=first, last=last)
        result["registry_seed"] = {
            "versions": args.versions,
            "deployments": len(deployments),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        print(f"[bench] registry: {args.versions} versions, {len(deployments)} deployments", flush=True)

        http_n = min(results_n, args.results_http) if args.copy else results_n
        bodies = result_bodies(http_n, args.batch, start=first, end=now - timedelta(seconds=1), rng=rng)
        warm = result_bodies(500, 500, start=first, end=now - timedelta(seconds=1), rng=random.Random(1))
        ingest(base, service_token, warm * args.workers, args.workers)  # every worker's first call (not timed)
        print(f"[bench] ingesting {http_n:,} records in calls of {args.batch:,}", flush=True)
        run = ingest(base, service_token, bodies, args.concurrency)
        run["records"] = http_n
        run["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        assert run["created"] == http_n, (run["created"], http_n)
        resend = []
        for body in bodies[:3]:
            t0 = time.perf_counter()
            res = requests.post(
                f"{base}/api/v1/results",
                data=body,
                headers={"Authorization": f"Bearer {service_token}", "Content-Type": "application/json"},
                timeout=600,
            )
            resend.append(round((time.perf_counter() - t0) * 1000, 1))
            assert res.status_code == 200 and res.json()["created"] == 0, res.text[:300]
        run["resend_batch_ms"] = resend
        print(
            f"[bench] ingest: {run['records_per_s']:,} records/s; per call of {args.batch:,} p50 "
            f"{run['per_call']['p50_ms']} p95 {run['per_call']['p95_ms']} ms; re-sending a batch (no-op) "
            f"{resend} ms",
            flush=True,
        )
        result["ingest"] = run
        if results_n > http_n:
            bodies.clear()
            print(f"[bench] COPY of {results_n - http_n:,} more result records", flush=True)
            copied = seed_results_copy(
                url, results_n - http_n, start=first, end=now - timedelta(seconds=1), rng=random.Random(23)
            )
            copied["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            result["results_copy"] = copied
            print(f"[bench] results COPY: {copied}", flush=True)

        sizes = table_sizes(url)
        result["tables"] = sizes
        with psycopg.connect(url) as conn:
            ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM catalog_resultrecord ORDER BY random() LIMIT %s", [args.reconstruct]
                ).fetchall()
            ]
        officer = make_token(env, "bench-officer", "compliance-officer")
        load_rec = [round(x, 2) for x in os.getloadavg()]
        result["reconstruction"] = time_reconstruction(base, {"Authorization": f"Bearer {officer}"}, ids)
        result["reconstruction"]["load_average_before_after"] = [load_rec, [round(x, 2) for x in os.getloadavg()]]
        if "p50_ms" in result["reconstruction"]:
            r = result["reconstruction"]
            print(f"[bench] reconstruct: p50 {r['p50_ms']} p95 {r['p95_ms']} p99 {r['p99_ms']} ms", flush=True)
    result["settings"] = {
        "results": results_n,
        "history": history_n,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "server": f"gunicorn -w {args.workers} (sync)",
        "records": "90% prod / 10% staging (environment given; two deployments serve at most times)",
        "database": "PostgreSQL (scripts/services/postgres.sh; fsync off on the test server)",
        "seeding": "COPY (history; results beyond the HTTP share)" if args.copy else "history.write and HTTP",
        "results_http": http_n,
    }
    result["load_average_at_start"] = load_before
    path = save("compliance", result)
    print(f"[bench] tables: {json.dumps(sizes)}")
    print(f"[bench] saved {path}")
    if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1":
        fresh_database(DB)


if __name__ == "__main__":
    main()
