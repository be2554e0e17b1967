"""Search benchmark: bulk-load 10k then 100k generated datasets over HTTP, then run a fixed query mix.

Prints and saves p50/p95/p99 latency and queries per second (bench/results/search.json), plus the bulk
upsert rate (datasets/s through POST /api/v1/datasets/bulk) and how long the worker took to index.
Goals (PostgreSQL, 100k datasets): search p95 <= 50 ms; bulk upsert >= 2,000 datasets/s.

Usage: python bench/search.py [--sizes 10000,100000] [--requests 2000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, fresh_database, load, manage, processes, save  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    url = fresh_database("steward_bench_search")
    env = bench_env(url)
    print("[bench] migrating a fresh database", flush=True)
    manage(env, "migrate", "-v0")
    token = (
        manage(
            env,
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User, Group;"
                "from accounts.services import token_create;"
                "from catalog.services import tag_create;"
                "u=User.objects.create_user('bench');u.groups.add(Group.objects.get(name='admin'));"
                f"[tag_create(actor=u, key=k, implied_level=l) for k, l in {TAGS!r}];"
                "print(token_create(actor=u, user=u, name='bench')[1])"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    result: dict = {"sizes": {}}
    with processes(env) as base:
        loaded = 0
        for size in sizes:
            to_load = size - loaded
            load_s = 0.0
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
            t1 = time.perf_counter()
            # Search totals are capped (exact_limit), so count the index itself until the worker has caught up.
            with psycopg.connect(url, autocommit=True) as conn:
                while conn.execute("SELECT count(*) FROM catalog_searchentry").fetchone()[0] < size:
                    time.sleep(0.5)
            index_s = time.perf_counter() - t1
            warm = [requests.get(f"{base}/api/v1/search", params=q, headers=headers, timeout=60) for q in QUERIES]
            assert all(r.status_code == 200 for r in warm)

            def search_call(session: requests.Session, i: int) -> None:
                r = session.get(f"{base}/api/v1/search", params=QUERIES[i % len(QUERIES)], timeout=60)
                r.raise_for_status()

            def suggest_call(session: requests.Session, i: int) -> None:
                r = session.get(f"{base}/api/v1/search/suggest", params={"q": SUGGEST[i % len(SUGGEST)]}, timeout=60)
                r.raise_for_status()

            search = load(search_call, requests_total=args.requests, concurrency=args.concurrency, headers=headers)
            suggest = load(
                suggest_call, requests_total=args.requests // 2, concurrency=args.concurrency, headers=headers
            )
            entry = {
                "bulk_upsert_datasets_per_s": round(to_load / load_s, 1),
                "bulk_batch": args.batch,
                "index_catch_up_s_after_load": round(index_s, 1),
                "search": search,
                "suggest": suggest,
                "per_query_p95_ms": {},
            }
            for q in QUERIES:
                lat = []
                for _ in range(20):
                    t = time.perf_counter()
                    requests.get(f"{base}/api/v1/search", params=q, headers=headers, timeout=60)
                    lat.append((time.perf_counter() - t) * 1000)
                lat.sort()
                entry["per_query_p95_ms"][json.dumps(q)] = round(lat[18], 1)
            result["sizes"][str(size)] = entry
            print(
                f"[bench] {size:,} datasets: bulk {entry['bulk_upsert_datasets_per_s']:,}/s, "
                f"search p50 {search['p50_ms']} p95 {search['p95_ms']} p99 {search['p99_ms']} ms, "
                f"{search['qps']} q/s; suggest p95 {suggest['p95_ms']} ms",
                flush=True,
            )
    result["settings"] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "server": "gunicorn -w 3",
        "database": "PostgreSQL (scripts/services/postgres.sh)",
    }
    path = save("search", result)
    print(f"[bench] saved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1":
        fresh_database("steward_bench_search")


if __name__ == "__main__":
    main()
