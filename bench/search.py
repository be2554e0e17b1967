"""Search benchmark: bulk-load 10k then 100k generated datasets over HTTP, then run a fixed query mix.

Prints and saves p50/p95/p99 latency and queries per second (bench/results/search.json), plus the bulk
upsert rate (datasets/s through POST /api/v1/datasets/bulk), how long the worker took to index, and for a
second backend the `search_reindex` rate. With several backends, each is served by its own gunicorn and the
query mix runs in interleaved rounds, with the load average recorded per backend.
Goals: database p95 <= 50 ms at 100k datasets, suggest p95 <= 30 ms; Elasticsearch p95 <= 30 ms at 1M;
bulk upsert >= 2,000 datasets/s.

Usage: python bench/search.py [--sizes 10000,100000] [--backend database,elasticsearch] [--requests 2000]
       [--concurrency 2] [--database steward_bench_search] [--seed direct] [--reuse --rebuild none]
       [--no-request-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, database_url, fresh_database, load, manage, percentiles, processes, save

DOMAINS = [
    "sales",
    "crm",
    "finance",
    "hr",
    "web",
    "logistics",
    "marketing",
    "risk",
    "support",
    "billing",
    "inventory",
    "payments",
    "fraud",
    "growth",
    "product",
    "legal",
]
ENTITIES = [
    "orders",
    "customers",
    "invoices",
    "refunds",
    "contacts",
    "accounts",
    "leads",
    "ledger",
    "budgets",
    "employees",
    "salaries",
    "sessions",
    "clicks",
    "shipments",
    "stock",
    "carriers",
    "campaigns",
    "tickets",
    "subscriptions",
    "transactions",
    "cards",
    "devices",
    "events",
    "products",
    "prices",
]
COLUMNS = [
    "id",
    "customer_id",
    "order_id",
    "email",
    "phone",
    "full_name",
    "address",
    "amount",
    "currency",
    "created_at",
    "updated_at",
    "status",
    "country",
    "region",
    "channel",
    "sku",
    "quantity",
    "score",
    "session_id",
    "url",
    "device_id",
    "card_number",
    "merchant",
    "category",
    "segment",
    "balance",
]
PLATFORMS = [
    "postgres://warehouse.internal:5432",
    "s3://datalake",
    "kafka://events.internal:9092",
    "bigquery",
    "snowflake://acme",
]
TAGS = [
    ("pii.email", "C3"),
    ("pii.phone", "C3"),
    ("pii.name", "C3"),
    ("finance", "C2"),
    ("customer", ""),
    ("gold", ""),
    ("derived", ""),
    ("secret.hr", "C4"),
]
QUERIES = [
    {"q": "orders"},
    {"q": "customer email"},
    {"q": "custmer"},
    {"q": "ord"},
    {"q": "salaries"},
    {"q": "transactions", "platform": "s3"},
    {"q": "sales orders daily"},
    {"q": "", "tag": "pii.email"},
    {"q": "invoices", "classification": "C3"},
    {"q": "card_number"},
    {"q": "shipments carriers"},
    {"q": "", "platform": "kafka"},
    {"q": "fraud", "kind": "dataset"},
    {"q": "payments refunds"},
]
SUGGEST = ["ord", "cust", "sal", "inv", "tra", "shi"]


def generate(start: int, count: int, rng: random.Random) -> list[dict]:
    items = []
    for i in range(start, start + count):
        domain = rng.choice(DOMAINS)
        entity = rng.choice(ENTITIES)
        ns = rng.choice(PLATFORMS)
        cols = rng.sample(COLUMNS, rng.randint(5, 12))
        fields = [
            {"name": c, "type": "text", "tags": (["pii.email"] if c == "email" and rng.random() < 0.5 else [])}
            for c in cols
        ]
        tags = [t for t, _ in rng.sample(TAGS, rng.randint(0, 2))]
        items.append(
            {
                "namespace": ns,
                "name": f"{domain}.{entity}_{rng.choice(['daily', 'raw', 'clean', 'agg', 'v2', 'history'])}_{i}",
                "description": f"{entity.capitalize()} for the {domain} team, {rng.choice(['daily', 'hourly'])} load.",
                "fields": fields,
                "tags": tags,
                "owners": ["bench"],
            }
        )
    return items


LEVEL_OF = dict(TAGS)
ORDER = ["C1", "C2", "C3", "C4"]


def documents(start: int, count: int, rng: random.Random) -> list:
    """``generate``'s datasets as search documents (``--seed direct``): what the catalog would hand every
    backend for them (classification the highest level their tags imply, C4 hidden, owner ``bench``)."""
    from catalog.search.documents import SearchDocument
    from catalog.validation import platform_of

    docs = []
    for n, item in enumerate(generate(start, count, rng)):
        tags = sorted(set(item["tags"]) | {t for f in item["fields"] for t in f["tags"]})
        level = max((LEVEL_OF[t] for t in tags if LEVEL_OF[t]), key=ORDER.index, default="C1")
        docs.append(
            SearchDocument(
                kind="dataset",
                id=uuid.UUID(int=(1 << 64) + start + n),
                name=item["name"].rsplit(".", 1)[-1],
                qualified_name=item["name"],
                namespace=item["namespace"],
                platform=platform_of(item["namespace"]),
                description=item["description"],
                classification=level,
                hidden=level == "C4",
                columns=[f["name"] for f in item["fields"]],
                tags=tags,
                owners=["user:bench"],
            )
        )
    return docs


SEED_PROBE = """
import json, random, time
from bench.search import documents
from catalog.search import get_backend
backend = get_backend()
backend.setup()
rng = random.Random(7)
def batches():
    for start in range(0, SIZE, 5000):
        yield documents(start, min(5000, SIZE - start), rng)
t0 = time.perf_counter()
backend.rebuild(batches())
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def seed_direct(backends: list[str], env_for: dict, size: int) -> dict:
    """``--seed direct``: each backend's own bulk path fed generated documents, timed (the indexing rate). The
    database backend writes its tables with COPY (``rebuild``: one transaction), Elasticsearch fills a new
    index with the bulk API and swaps the alias. No catalog rows are written: search reads only the index."""
    out: dict = {}
    for b in backends:
        load_before = loadavg()
        raw = manage(env_for[b], "shell", "-c", f"SIZE = {size}\n{SEED_PROBE}")
        took = json.loads(raw.strip().splitlines()[-1])["seconds"]
        out[f"{b}_seed_s"] = round(took, 1)
        out[f"{b}_indexing_datasets_per_s"] = round(size / took, 1)
        out[f"{b}_seed_loadavg"] = f"{load_before:.2f}-{loadavg():.2f}"
        print(
            f"[bench] {b}: indexed {size:,} generated documents in {took:.1f} s ({size / took:,.0f}/s, load "
            f"average {out[f'{b}_seed_loadavg']})",
            flush=True,
        )
    return out


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backend", default="database", help="database, elasticsearch, or both comma-separated")
    parser.add_argument("--requests", type=int, default=2000, help="search requests per backend and size")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per backend (several backends)")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--database", default="steward_bench_search", help="name of the throw-away database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the datasets a previous run left (STEWARD_BENCH_KEEP_DB=1): migrate, rebuild every backend's "
        "index with search_reindex (timed), then query",
    )
    parser.add_argument("--engine-only", action="store_true", help="only the in-process backend timings, no HTTP")
    parser.add_argument(
        "--seed",
        choices=["http", "direct"],
        default="http",
        help="http: datasets through POST /api/v1/datasets/bulk (catalog rows, the worker indexes); direct: "
        "generated documents straight into each backend's bulk indexing (COPY on the database), no catalog rows",
    )
    parser.add_argument(
        "--rebuild", default="database,elasticsearch", help="with --reuse: the backends to rebuild (others as left)"
    )
    parser.add_argument(
        "--no-request-cache",
        action="store_true",
        help="Elasticsearch: count without the shard request cache (the query mix repeats 14 queries, so the "
        "counting requests are otherwise answered from it after the first round)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not backends or set(backends) - {"database", "elasticsearch"}:
        parser.error("--backend: choose database and/or elasticsearch")

    url = existing_database(args.database) if args.reuse else fresh_database(args.database)
    es_url = os.environ.get("STEWARD_ELASTICSEARCH_URL", "http://127.0.0.1:59200")
    # Bulk loading a million documents on a busy machine can take longer than the client's default 10 s a call.
    es_options = json.dumps(
        {
            "url": es_url,
            "index": f"bench-{args.database}",
            "timeout": 120,
            **({"request_cache": False} if args.no_request_cache else {}),
        }
    )
    env_for = {
        "database": bench_env(url, STEWARD_SEARCH_BACKEND="database"),
        "elasticsearch": bench_env(url, STEWARD_SEARCH_BACKEND="elasticsearch", STEWARD_SEARCH_OPTIONS=es_options),
    }
    # The loading server's worker keeps the first backend in step; another backend is rebuilt after each load.
    loader = backends[0]
    env = env_for[loader]
    print("[bench] migrating the database", flush=True)
    manage(env, "migrate", "-v0")
    if "elasticsearch" in backends and not args.reuse:
        manage(env_for["elasticsearch"], "search_reindex", "-v0")  # an empty index behind the alias
    token = (
        manage(
            env,
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User, Group;"
                "from accounts.services import token_create;"
                "from catalog.services import tag_create;"
                "u=User.objects.filter(username='bench').first();"
                "u = u or User.objects.create_user('bench');u.groups.add(Group.objects.get(name='admin'));"
                "from catalog.models import Tag;"
                f"[tag_create(actor=u, key=k, implied_level=l) for k, l in {TAGS!r} if not Tag.objects.filter(key=k)];"
                "print(token_create(actor=u, user=u, name='bench')[1])"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    result: dict = {"sizes": {}, "backends": backends}
    loaded = 0
    for size in sizes:
        entry: dict = {}
        if args.seed == "direct" and not args.reuse:
            entry["seed"] = "direct: generated documents into each backend's bulk indexing, no catalog rows"
            entry.update(seed_direct(backends, env_for, size))
            entry["engine_only"] = engine_latency(backends, env_for, rounds=10)
            if not args.engine_only:
                entry.update(run_queries(backends, env_for, headers, args))
                report(size, backends, entry)
            result["sizes"][str(size)] = entry
            save("search", {**result, "partial": True})
            continue
        if args.reuse:
            rebuild = [b for b in backends if b in args.rebuild.split(",")]
            entry.update(rebuild_all(rebuild, env_for, size, url))
            entry["engine_only"] = engine_latency(backends, env_for, rounds=10)
            if not args.engine_only:
                entry.update(run_queries(backends, env_for, headers, args))
                report(size, backends, entry)
            result["sizes"][str(size)] = entry
            continue
        with processes(env) as base:
            to_load = size - loaded
            load_s = 0.0
            entry["loadavg_before_load"] = loadavg()
            for start in range(loaded, size, args.batch):
                items = generate(start, min(args.batch, size - start), rng)
                body = json.dumps({"datasets": items})  # the client's own work is not the server's time
                t0 = time.perf_counter()
                res = requests.post(
                    f"{base}/api/v1/datasets/bulk",
                    data=body,
                    headers={**headers, "Content-Type": "application/json"},
                    timeout=600,
                )
                load_s += time.perf_counter() - t0
                res.raise_for_status()
                print(f"[bench] loaded {start + len(items):,}/{size:,}", flush=True)
            loaded = size
            entry["bulk_upsert_datasets_per_s"] = round(to_load / load_s, 1)
            entry["bulk_batch"] = args.batch
            t1 = time.perf_counter()
            # Search totals are capped, so wait for the worker by counting the index itself.
            while indexed(loader, url, es_options) < size:
                time.sleep(0.5)
            entry[f"{loader}_index_catch_up_s_after_load"] = round(time.perf_counter() - t1, 1)
        for other in backends[1:]:
            t2 = time.perf_counter()
            manage(env_for[other], "search_reindex", "-v0")
            took = time.perf_counter() - t2
            entry[f"{other}_rebuild_s"] = round(took, 1)
            entry[f"{other}_rebuild_datasets_per_s"] = round(size / took, 1)
            print(f"[bench] {other}: search_reindex of {size:,} datasets in {took:.1f} s", flush=True)
        entry["engine_only"] = engine_latency(backends, env_for, rounds=10)
        entry.update(run_queries(backends, env_for, headers, args))
        result["sizes"][str(size)] = entry
        report(size, backends, entry)
    result["settings"] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "server": "gunicorn -w 3 per backend",
        "database": "PostgreSQL (scripts/services/postgres.sh)",
        "elasticsearch": "8.19 integ-test distribution, 512 MiB heap (scripts/services/elasticsearch.sh)",
        "elasticsearch_request_cache": not args.no_request_cache,
    }
    path = save("search", result)
    print(f"[bench] saved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1":
        fresh_database(args.database)


ENGINE_PROBE = """
import json, time
from django.contrib.auth.models import User
from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from steward.identity import viewer_for
viewer, backend = viewer_for(User.objects.get(username="bench")), get_backend()
names = {"kind": "kinds", "platform": "platforms", "tag": "tags", "classification": "classifications"}
queries = [SearchQuery(**{names.get(k, k): ([v] if k in names else v) for k, v in q.items()}) for q in QUERIES]
search, suggest = [], []
for _ in range(ROUNDS):
    for q in queries:
        t = time.perf_counter(); backend.search(q, viewer); search.append((time.perf_counter() - t) * 1000)
    for p in SUGGEST:
        t = time.perf_counter(); backend.suggest(p, viewer); suggest.append((time.perf_counter() - t) * 1000)
print(json.dumps({"search": search, "suggest": suggest}))
"""


def engine_latency(backends: list[str], env_for: dict, rounds: int) -> dict:
    """The backends alone, in one process each, no HTTP (sequential): what the engine and its queries cost,
    apart from the web server's share of a loaded machine."""
    out: dict = {}
    for b in backends:
        code = f"QUERIES = {QUERIES!r}\nSUGGEST = {SUGGEST!r}\nROUNDS = {rounds}\n{ENGINE_PROBE}"
        load_before = loadavg()
        raw = json.loads(manage(env_for[b], "shell", "-c", code).strip().splitlines()[-1])
        out[b] = {
            "search": percentiles(raw["search"]),
            "suggest": percentiles(raw["suggest"]),
            "loadavg": f"{load_before:.2f}-{loadavg():.2f}",
        }
        print(
            f"[bench] engine only, {b}: search p50 {out[b]['search']['p50_ms']} p95 {out[b]['search']['p95_ms']} ms; "
            f"suggest p95 {out[b]['suggest']['p95_ms']} ms (load average {out[b]['loadavg']})",
            flush=True,
        )
    return out


def report(size: int, backends: list[str], entry: dict) -> None:
    for b in backends:
        s, g = entry[b]["search"], entry[b]["suggest"]
        print(
            f"[bench] {size:,} datasets, {b}: search p50 {s['p50_ms']} p95 {s['p95_ms']} p99 {s['p99_ms']} ms, "
            f"{s['qps']} q/s; suggest p95 {g['p95_ms']} ms (load average {entry[b]['loadavg']})",
            flush=True,
        )


def existing_database(name: str) -> str:
    """``--reuse``: the kept database's URL, created empty when there is none (a ``--seed direct`` run keeps
    only the search indexes: its catalog holds no datasets, and the database is dropped at the end)."""
    from bench._harness import PG_ADMIN_URL

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}" OWNER steward')
    return database_url(name)


def rebuild_all(backends: list[str], env_for: dict, size: int, url: str) -> dict:
    """Rebuild each backend's index from the kept datasets (``--reuse``), timed; ``--rebuild none`` queries
    the indexes as a previous run left them (also those of ``--seed direct``, which wrote no datasets)."""
    if not backends:
        return {}
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM catalog_dataset").fetchone()[0]
    if have < size:
        raise SystemExit(f"--reuse: the database holds {have:,} datasets, fewer than {size:,}")
    out: dict = {}
    for b in backends:
        load_before = loadavg()
        t0 = time.perf_counter()
        manage(env_for[b], "search_reindex", "-v0")
        took = time.perf_counter() - t0
        out[f"{b}_rebuild_s"] = round(took, 1)
        out[f"{b}_rebuild_datasets_per_s"] = round(have / took, 1)
        out[f"{b}_rebuild_loadavg"] = f"{load_before:.2f}-{loadavg():.2f}"
        print(f"[bench] {b}: search_reindex of {have:,} datasets in {took:.1f} s", flush=True)
    return out


def indexed(backend: str, url: str, es_options: str) -> int:
    """How many documents the backend holds (not through search: totals there are capped)."""
    if backend == "database":
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM catalog_searchentry").fetchone()[0]
    opts = json.loads(es_options)
    requests.post(f"{opts['url']}/{opts['index']}/_refresh", timeout=60)
    return requests.get(f"{opts['url']}/{opts['index']}/_count", timeout=60).json().get("count", 0)


def run_queries(backends: list[str], env_for: dict, headers: dict, args: argparse.Namespace) -> dict:
    """Serve each backend from its own gunicorn and run the query mix in interleaved rounds, so a change in
    the machine's load hits every backend alike."""
    out: dict = {}
    with ExitStack() as stack:
        bases = {b: stack.enter_context(processes(env_for[b], celery=False)) for b in backends}
        for base in bases.values():  # warm up
            assert all(
                requests.get(f"{base}/api/v1/search", params=q, headers=headers, timeout=60).status_code == 200
                for q in QUERIES
            )
        samples = {b: {"search": [], "suggest": [], "load": []} for b in backends}
        started = {b: 0.0 for b in backends}
        per_round = max(args.requests // args.rounds, args.concurrency)
        for _ in range(args.rounds):
            for b, base in bases.items():

                def search_call(session: requests.Session, i: int, base: str = base) -> None:
                    r = session.get(f"{base}/api/v1/search", params=QUERIES[i % len(QUERIES)], timeout=60)
                    r.raise_for_status()

                def suggest_call(session: requests.Session, i: int, base: str = base) -> None:
                    r = session.get(
                        f"{base}/api/v1/search/suggest", params={"q": SUGGEST[i % len(SUGGEST)]}, timeout=60
                    )
                    r.raise_for_status()

                samples[b]["load"].append(os.getloadavg()[0])
                t0 = time.perf_counter()
                load(
                    search_call,
                    requests_total=per_round,
                    concurrency=args.concurrency,
                    headers=headers,
                    samples=samples[b]["search"],
                )
                started[b] += time.perf_counter() - t0
                load(
                    suggest_call,
                    requests_total=per_round // 2,
                    concurrency=args.concurrency,
                    headers=headers,
                    samples=samples[b]["suggest"],
                )
        for b, base in bases.items():
            per_query = {}
            for q in QUERIES:
                lat = []
                for _ in range(20):
                    t = time.perf_counter()
                    requests.get(f"{base}/api/v1/search", params=q, headers=headers, timeout=60)
                    lat.append((time.perf_counter() - t) * 1000)
                lat.sort()
                per_query[json.dumps(q)] = round(lat[18], 1)
            search = percentiles(samples[b]["search"])
            out[b] = {
                "search": {
                    **search,
                    "requests": len(samples[b]["search"]),
                    "qps": round(len(samples[b]["search"]) / started[b], 1),
                },
                "suggest": {**percentiles(samples[b]["suggest"]), "requests": len(samples[b]["suggest"])},
                "loadavg": f"{min(samples[b]['load']):.2f}-{max(samples[b]['load']):.2f}",
                "per_query_p95_ms": per_query,
            }
    return out


if __name__ == "__main__":
    main()
