"""Page benchmark: server-side time of the main web pages on the demo data set plus N generated datasets.

A throw-away database gets the migrations, ``demo_load`` and N generated datasets (bench/search.py's generator,
through the same bulk service the API uses), then the search index is rebuilt. Each page is then rendered by
Django's test client inside one process (the view, its queries and the template: the server's own time, no
network or browser), logged in as the user who would open it. Prints and saves p50/p95 per page with the load
average (bench/results/pages.json).
Goal (issue 13): the search page p95 <= 100 ms at 100k datasets. The lineage explorer page and the graph API it
draws from are also timed around a hub with 521 datasets within two hops.

Usage: python bench/pages.py [--datasets 100000] [--rounds 30] [--database steward_bench_pages] [--reuse]

Loading 100k datasets takes minutes; ``STEWARD_BENCH_KEEP_DB=1`` keeps the database afterwards, and ``--reuse`` times
the pages again on a database an earlier run kept (its migrations brought up to date, nothing loaded; it is kept
again), e.g. before and after a change, or in a quiet window after loading while the machine was busy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import ROOT, bench_env, database_url, fresh_database, manage, save

PROBE = r"""
import json, os, random, sys, time
from django.db import connection
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
from bench._harness import percentiles
from bench.search import TAGS, generate
from catalog.models import Tag
from catalog.services import tag_create
from catalog.validation import ProblemCollector, parse_dataset
from catalog.models import Dataset
from catalog.services import dataset_bulk_upsert
from catalog.services.search import search_rebuild
from ledger import audit

args = json.loads(os.environ["STEWARD_BENCH_ARGS"])
setup_test_environment()  # the test client's host and template instrumentation, nothing else
ada = User.objects.get(username="ada")
rng = random.Random(7)
loaded_s = 0.0
rebuild_s = 0.0
FAN_NS = "postgres://fan:5432"
if args["reuse"]:  # an earlier run's database: its datasets, search index and lineage fan are there
    if not Dataset.objects.filter(namespace=FAN_NS, name="fan.hub").exists():
        sys.exit(f"{args['database']} holds no page benchmark data: run once with STEWARD_BENCH_KEEP_DB=1 first")
else:
    with audit.as_system("page benchmark data"):
        for key, level in TAGS:  # the generator's tags the demo lacks
            if not Tag.objects.filter(key=key).exists():
                tag_create(actor=ada, key=key, implied_level=level)
        for start in range(0, args["datasets"], 5000):
            problems = ProblemCollector()
            items = generate(start, min(5000, args["datasets"] - start), rng)
            for item in items:
                item["owners"] = ["ada"]  # the generator names a "bench" user the demo does not have
            specs = [parse_dataset(item, f"datasets[{i}]", problems) for i, item in enumerate(items)]
            problems.raise_if_any()
            t0 = time.perf_counter()
            dataset_bulk_upsert(actor=ada, specs=specs)
            loaded_s += time.perf_counter() - t0
            print(f"[bench] loaded {start + len(items):,}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    search_rebuild()
    rebuild_s = time.perf_counter() - t0

    # The lineage explorer at 500+ nodes (issue 13): one hub, 20 jobs reading it, each writing 25 datasets (521
    # datasets and 20 jobs within two hops), ingested as a producer would send it.
    import uuid
    from lineage.services.ingest import ingest
    fan_events = [
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-11-01T12:00:00Z",
            "run": {"runId": str(uuid.uuid4()), "facets": {}},
            "job": {"namespace": "bench", "name": f"spread_{j:02d}", "facets": {}},
            "inputs": [{"namespace": FAN_NS, "name": "fan.hub", "facets": {}}],
            "outputs": [{"namespace": FAN_NS, "name": f"fan.out_{j:02d}_{k:02d}", "facets": {}} for k in range(25)],
            "producer": "https://github.com/steward/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
        }
        for j in range(20)
    ]
    with audit.as_system("page benchmark lineage"):
        ingest(actor=ada, events=fan_events, batch=True)
    if connection.vendor == "postgresql":  # what autovacuum does within a minute of a bulk load in production
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
        print(f"[bench] VACUUM (ANALYZE) in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
some = Dataset.objects.filter(name="marts.customer_360").first() or Dataset.objects.first()
hub = Dataset.objects.get(namespace=FAN_NS, name="fan.hub")
FAN_QUERY = "direction=downstream&depth=2"
pages = [
    ("sam", "search (no query)", "/"),
    ("sam", "search q=orders", "/?q=orders"),
    ("sam", "search q=customer email, C3", "/?q=customer+email&classification=C3"),
    ("sam", "search typo q=custmer", "/?q=custmer"),
    ("sam", "typeahead q=cust", "/search/suggest?q=cust"),
    ("sam", "dataset list", "/datasets/"),
    ("sam", "dataset page", f"/datasets/{some.pk}/"),
    ("sam", "dataset lineage", f"/datasets/{some.pk}/lineage"),
    ("sam", "lineage explorer, 521 datasets", f"/datasets/{hub.pk}/lineage?direction=downstream&depth=2"),
    ("sam", "graph API, 521 datasets", f"/api/v1/lineage/graph?namespace={FAN_NS}&name=fan.hub&{FAN_QUERY}"),
    ("sam", "my access", "/access/"),
    ("olive", "approvals inbox", "/approvals/"),
    ("sam", "workspaces", "/workspaces/"),
    ("carl", "compliance", "/compliance/"),
    ("carl", "compliance find", "/compliance/find"),
    ("carl", "audit log", "/compliance/audit"),
    ("sam", "tokens", "/tokens/"),
]
clients = {}
out = {"datasets_total": Dataset.objects.count(), "bulk_load_s": round(loaded_s, 1)}
out |= {"search_rebuild_s": round(rebuild_s, 1), "pages": {}}
for user, label, url in pages:
    if user not in clients:
        clients[user] = Client()
        clients[user].force_login(User.objects.get(username=user))
    client = clients[user]
    status = client.get(url).status_code  # warm-up (caches, first-query plans)
    samples = []
    for _ in range(args["rounds"]):
        t0 = time.perf_counter()
        res = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
    out["pages"][label] = {"url": url, "user": user, "status": status, **percentiles(samples)}
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=100_000, help="generated datasets on top of the demo")
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per page")
    parser.add_argument("--database", default="steward_bench_pages")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the pages on the database an earlier run kept (STEWARD_BENCH_KEEP_DB=1): no loading; kept again",
    )
    args = parser.parse_args()
    url = database_url(args.database) if args.reuse else fresh_database(args.database)
    env = bench_env(url, CELERY_TASK_ALWAYS_EAGER="1", STEWARD_SEARCH_BACKEND="database")
    try:
        t0 = time.perf_counter()
        manage(env, "migrate", "-v0")
        if not args.reuse:
            manage(env, "demo_load")
        setup_s = time.perf_counter() - t0
        load_before = [round(x, 2) for x in os.getloadavg()]
        probe = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", PROBE],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT), "STEWARD_BENCH_ARGS": json.dumps(vars(args))},
            capture_output=True,
            text=True,
        )
        if probe.returncode:
            sys.exit(f"[bench] the probe failed:\n{probe.stderr[-3000:]}")
        result = json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1" and not args.reuse:
            fresh_database(args.database)
    result.update(
        migrate_and_demo_s=round(setup_s, 1),
        loadavg_before=load_before,
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        settings={
            "rounds": args.rounds,
            "search_backend": "database",
            "database": "PostgreSQL",
            "in_process": True,
            "reused_database": args.reuse,
        },
    )
    print(f"[bench] {result['datasets_total']:,} datasets; load average {load_before} -> {result['loadavg_after']}")
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8}  status")
    for label, row in result["pages"].items():
        print(f"{label:34} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f}  {row['status']}")
    save("pages", result)


if __name__ == "__main__":
    main()
