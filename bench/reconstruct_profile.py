"""In-process profile of point-in-time reconstruction (issue 18): where the time of one reconstruction goes.

Runs ``compliance.reconstruction.reconstruct`` for random result records of the database that
``bench/compliance.py`` seeded and kept (``steward_bench_compliance``, 10M history rows and 10M results), in this
process, without HTTP, and reports per reconstruction: wall time (p50/p95), this process's CPU time, the number
of statements and the database time (``CaptureQueriesContext``), and the statements that took the most time.
``--cprofile`` prints the functions that take the most time. Read-only by default: it neither audits nor stores
anything. ``--view`` goes through the whole served stack instead (Django's test client on the WSGI application:
middleware, bearer-token authentication, the view, the audit event each reconstruction writes, the JSON answer;
no network), as a compliance officer created for the run. No timed assertions: figures for docs/benchmarks.md,
labelled with the load average printed (``bench/compliance.py --reconstruct-only`` times the same over HTTP).

Usage: python bench/reconstruct_profile.py [--count 200] [--view] [--cprofile] [--db steward_bench_compliance]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, database_url


def _setup(db: str) -> None:
    os.environ.update(bench_env(database_url(db)))
    import django

    django.setup()
    from steward.gctune import tune

    tune()  # as gunicorn's workers do once loaded (steward/wsgi.py)


def _result_ids(count: int) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:  # a sample of pages, not a sort of every row
        cursor.execute("SELECT id FROM catalog_resultrecord TABLESAMPLE SYSTEM (0.1) LIMIT %s", [count])
        ids = [str(r[0]) for r in cursor.fetchall()]
        if len(ids) < count:
            cursor.execute("SELECT id FROM catalog_resultrecord LIMIT %s", [count])
            ids = [str(r[0]) for r in cursor.fetchall()]
    if not ids:
        raise SystemExit("no result records: seed the database with bench/compliance.py (STEWARD_BENCH_KEEP_DB=1)")
    return ids


def _top_queries(captured: list[dict], count: int, top: int = 12) -> None:
    by: dict[str, list[float]] = {}
    for q in captured:
        shape = re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "$n", q["sql"])
        shape = re.sub(r"\s+", " ", re.sub(r"(\$n, )+\$n", "$n...", shape))[:150]
        by.setdefault(shape, []).append(float(q["time"]))
    print("[profile] top statements (ms per reconstruction, calls per reconstruction):")
    for shape, times in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:top]:
        print(f"    {sum(times) * 1000 / count:7.2f} {len(times) / count:5.2f}  {shape}")


def _through_function() -> Callable[[str], object]:
    from uuid import UUID

    from django.utils import timezone

    from compliance.reconstruction import Query, reconstruct
    from steward.canonical import digest

    def run(rid: str) -> object:
        return digest(reconstruct(Query(result=UUID(rid)), now=timezone.now()))  # and the bundle's digest, as served

    return run


def _through_view() -> Callable[[str], object]:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from accounts.services import token_create

    user = User.objects.create_user(f"bench-profile-{int(time.time())}")
    user.groups.add(Group.objects.get_or_create(name="compliance-officer")[0])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(actor=user, user=user, name='bench')[1]}")

    def run(rid: str) -> object:
        res = client.get("/api/v1/compliance/reconstruct", {"result": rid}, HTTP_HOST="127.0.0.1")
        if res.status_code != 200:
            raise SystemExit(f"HTTP {res.status_code}: {res.content[:300]!r}")
        return res

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="reconstructions to time (after 20 to warm up)")
    parser.add_argument("--db", default=os.environ.get("STEWARD_BENCH_COMPLIANCE_DB", "steward_bench_compliance"))
    parser.add_argument("--cprofile", action="store_true", help="print the functions that take the most time")
    parser.add_argument("--view", action="store_true", help="through the served view (audited), not the function")
    args = parser.parse_args()
    _setup(args.db)
    ids = _result_ids(args.count)
    run = _through_view() if args.view else _through_function()
    for rid in ids[:20]:  # warm caches and the connection
        run(rid)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    load = round(os.getloadavg()[0], 2)
    walls: list[float] = []
    prof = cProfile.Profile() if args.cprofile else None
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        c0 = time.process_time()
        for rid in ids:
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            run(rid)
            if prof:
                prof.disable()
            walls.append((time.perf_counter() - t0) * 1000)
        cpu = time.process_time() - c0
    walls.sort()
    n = len(walls)
    db_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000 / n
    print(
        f"[profile] {n} reconstructions in process{' through the view' if args.view else ''}: "
        f"p50 {statistics.median(walls):.1f} ms, "
        f"p95 {walls[int(n * 0.95) - 1]:.1f} ms, CPU here {cpu * 1000 / n:.1f} ms, "
        f"{len(queries) / n:.1f} statements, database time {db_ms:.1f} ms; load {load} → "
        f"{round(os.getloadavg()[0], 2)}",
        flush=True,
    )
    _top_queries(queries.captured_queries, n)
    if prof:
        for key, lines in (("cumulative", 45), ("tottime", 25)):
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats(key).print_stats(lines)
            print(text.getvalue(), flush=True)


if __name__ == "__main__":
    main()
