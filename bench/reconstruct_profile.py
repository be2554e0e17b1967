"""In-process profile of point-in-time reconstruction (issue 18): where the time of one reconstruction goes.

Runs ``compliance.reconstruction.reconstruct`` for random result records of the database that
``bench/compliance.py`` seeded and kept (``steward_bench_compliance``, 10M history rows and 10M results), in this
process, without HTTP, and reports per reconstruction: wall time (p50/p95), this process's CPU time, the number
of statements and the database time (``CaptureQueriesContext``), and the statements that took the most time.
``--cprofile`` prints the functions that take the most time. Read-only: it neither audits nor stores anything
(the HTTP endpoint also writes one audit event per reconstruction; ``bench/compliance.py --reconstruct-only``
times that). No timed assertions: figures for docs/benchmarks.md, labelled with the load average printed.

Usage: python bench/reconstruct_profile.py [--count 200] [--cprofile] [--db steward_bench_compliance]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import PG_ADMIN_URL, bench_env


def _setup(db: str) -> None:
    os.environ.update(bench_env(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="reconstructions to time (after 20 to warm up)")
    parser.add_argument("--db", default=os.environ.get("STEWARD_BENCH_COMPLIANCE_DB", "steward_bench_compliance"))
    parser.add_argument("--cprofile", action="store_true", help="print the functions that take the most time")
    args = parser.parse_args()
    _setup(args.db)
    from uuid import UUID

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from compliance.reconstruction import Query, reconstruct
    from steward.canonical import digest

    ids = _result_ids(args.count)
    for rid in ids[:20]:  # warm caches and the connection
        reconstruct(Query(result=UUID(rid)))
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
            digest(reconstruct(Query(result=UUID(rid)), now=timezone.now()))  # the bundle's digest, as served
            if prof:
                prof.disable()
            walls.append((time.perf_counter() - t0) * 1000)
        cpu = time.process_time() - c0
    walls.sort()
    n = len(walls)
    db_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000 / n
    print(
        f"[profile] {n} reconstructions in process: p50 {statistics.median(walls):.1f} ms, "
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
