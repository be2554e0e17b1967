"""In-process profile of heavy OpenLineage ingestion (issue 18): where the server time per event goes.

On a throw-away PostgreSQL database (and the Redis broker, a queue of its own, as under gunicorn), the heavy
events of ``bench/lineage.py`` go through the ingestion service (``lineage.services.ingest.ingest``) one at a
time on an empty catalog; then the tasks they queued run in-process one by one, as the Celery worker would (the
worker's share of the work); then the same events again (duplicates), new events through the view (Django test
client, bearer token: authentication, DRF parsing, the response) one at a time, in batches, and as new runs over
known datasets. Each phase reports ms per event (wall, and this process's own CPU, steadier on a busy machine),
statements and round trips per event (``CaptureQueriesContext`` and an execute wrapper) and the CPU of the
connection's PostgreSQL backend (read from ``/proc``: the database's share, which ``ms CPU here`` leaves out);
``--cprofile`` prints the functions that take the most time. ``--batches-only``: only ``/lineage/batch``'s service
path, ``--events`` events in calls of ``--batch`` on an empty catalog, then again as new runs over known datasets
(for before/after comparisons: run it from two checkouts, interleaved). The process tunes its garbage collector
as gunicorn's workers do (``steward/gctune.py``); ``STEWARD_GC_THRESHOLD=`` (empty) measures with Python's defaults.
No timed assertions: figures for docs/benchmarks.md (label them with the load average printed beside them).

Usage: python bench/lineage_profile.py [--events 500] [--batch 250] [--cprofile] [--db NAME] [--keep] [--batches-only]
       [--queued-only]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, fresh_database
from bench.lineage import generate_heavy_events


def _setup(db: str) -> None:
    url = fresh_database(db)
    os.environ.update(bench_env(url))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from steward.gctune import tune

    tune()  # as gunicorn's and the Celery worker's processes do once loaded (steward/wsgi.py, steward/celery.py)


def _top_queries(captured: list[dict], count: int, top: int = 15) -> None:
    """The statements that took the most time, their literals folded (``$n``), per event."""
    by: dict[str, list[float]] = {}
    for q in captured:
        shape = re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "$n", q["sql"])
        shape = re.sub(r"(\$n, )+\$n", "$n...", shape)[:160]
        by.setdefault(shape, []).append(float(q["time"]))
    total = sum(sum(v) for v in by.values())
    print(f"[profile]   database time {total * 1000 / count:.2f} ms/event; top statements (ms/event, calls/event):")
    for shape, times in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:top]:
        print(f"    {sum(times) * 1000 / count:7.2f} {len(times) / count:6.2f}  {shape}")


class _RoundTrips:
    """Counts round trips: a statement outside psycopg's pipeline mode is one, a run of statements inside one
    pipeline is one (a read inside it that forces a sync is not counted), and each commit is one (Django shows
    ``COMMIT`` among the queries but not to execute wrappers); ``BEGIN`` is sent with the first statement."""

    def __init__(self) -> None:
        self.trips = 0
        self.pipeline: object | None = None

    def __call__(self, execute: Callable, sql: str, params: object, many: bool, context: dict) -> object:
        from django.db import connection

        raw = connection.connection
        pipeline = getattr(raw, "_pipeline", None) if raw is not None else None
        if pipeline is None or pipeline is not self.pipeline:
            self.trips += 1
        self.pipeline = pipeline
        return execute(sql, params, many, context)


def _backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL backend (same machine: ``/proc``), or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _phase(name: str, count: int, run: Callable[[], None], profile: bool, top_queries: bool = True) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    prof = cProfile.Profile() if profile else None
    connection.queries_log.clear()  # a deque of 9,000: a phase's count is only right from empty
    db0 = _backend_cpu()
    trips = _RoundTrips()
    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(trips):
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        run()
        if prof:
            prof.disable()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    db1 = _backend_cpu()
    out = {
        "phase": name,
        "events": count,
        "ms_per_event": round(elapsed * 1000 / count, 2),
        "events_per_s": round(count / elapsed, 1),
        # This process's own CPU (the web worker's share; the database's is apart): steadier than the wall time
        # on a busy machine.
        "cpu_ms_per_event": round(cpu * 1000 / count, 2),
        # The PostgreSQL backend's CPU for this connection (its share of the two cores; clock ticks of 10 ms).
        "db_cpu_ms_per_event": None if db0 is None or db1 is None else round((db1 - db0) * 1000 / count, 2),
        "queries_per_event": round(len(queries) / count, 2),
        "round_trips_per_event": round(
            (trips.trips + sum(q["sql"] == "COMMIT" for q in queries.captured_queries)) / count, 2
        ),
        "load": round(os.getloadavg()[0], 2),
    }
    print(
        f"[profile] {name}: {out['ms_per_event']} ms/event ({out['events_per_s']} events/s, "
        f"{out['cpu_ms_per_event']} ms CPU here, {out['db_cpu_ms_per_event']} ms CPU in PostgreSQL), "
        f"{out['queries_per_event']} statements/event in {out['round_trips_per_event']} round trips, "
        f"load {out['load']}",
        flush=True,
    )
    if top_queries:
        _top_queries(queries.captured_queries, count)
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(45)
        print(text.getvalue(), flush=True)
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
        print(text.getvalue(), flush=True)
    return out


def _worker_phase(events: int) -> dict:
    """Run every task queued so far (as the Celery worker would, in-process), timed: the worker's share."""
    import base64

    import redis
    from celery import current_app
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    tasks: dict[str, int] = {}
    t0 = time.perf_counter()
    while (raw := broker.rpop(queue)) is not None:
        message = json.loads(raw)
        name = message["headers"]["task"]
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        current_app.tasks[name](*args, **kwargs)
        tasks[name] = tasks.get(name, 0) + 1
    elapsed = time.perf_counter() - t0
    out = {
        "phase": "worker: the tasks queued by the new-catalog phase",
        "events": events,
        "tasks": tasks,
        "worker_ms_per_event": round(elapsed * 1000 / events, 2),
        "load": round(os.getloadavg()[0], 2),
    }
    print(f"[profile] worker: {out['worker_ms_per_event']} ms/event for {tasks}, load {out['load']}", flush=True)
    return out


def _pipeline_ab(user: object, events: list[dict], rounds: int) -> dict:
    """Single events over known datasets with ``lineage.services.ingest.PIPELINE_EVENTS`` 20 (a small call's final
    writes in one psycopg pipeline) and 0 (one round trip each), alternating in rounds: wall ms per event."""
    import statistics

    from lineage.services import ingest as service

    default = service.PIPELINE_EVENTS
    times: dict[int, list[float]] = {default: [], 0: []}
    year = 2028
    try:
        for r in range(rounds):
            for mode in (default, 0) if r % 2 == 0 else (0, default):
                service.PIPELINE_EVENTS = mode
                batch = _renewed(events, year)
                year += 1
                t0 = time.perf_counter()
                for e in batch:
                    service.ingest(actor=user, events=[e])
                times[mode].append((time.perf_counter() - t0) * 1000 / len(batch))
    finally:
        service.PIPELINE_EVENTS = default
    out = {
        "phase": "service single (known datasets): final writes pipelined vs not, interleaved",
        "pipelined_ms_per_event": round(statistics.median(times[default]), 2),
        "unpipelined_ms_per_event": round(statistics.median(times[0]), 2),
        "rounds": rounds,
        "load": round(os.getloadavg()[0], 2),
    }
    print(
        f"[profile] pipelined {out['pipelined_ms_per_event']} vs not {out['unpipelined_ms_per_event']} ms/event "
        f"(median of {rounds} interleaved rounds), load {out['load']}",
        flush=True,
    )
    return out


def _renewed(events: list[dict], year: int) -> list[dict]:
    """The same events as new runs (new run ids, ``year`` instead of 2026): their datasets known, schemas unchanged."""
    out = []
    for k in range(0, len(events) - 1, 2):
        run_id = str(uuid.uuid4())
        for e in events[k : k + 2]:
            copy = json.loads(json.dumps(e))
            copy["run"]["runId"] = run_id
            copy["eventTime"] = copy["eventTime"].replace("2026-", f"{year}-", 1)
            out.append(copy)
    return out


def _batches_only(user: object, events: list[dict], size: int, profile: bool) -> list[dict]:
    """``--batches-only``: the events in calls of ``size`` on an empty catalog (creating the datasets, as the first
    batches of ``bench/lineage.py --workload heavy`` do), then again as new runs over the known datasets."""
    from lineage.services.ingest import ingest

    def calls(chunk: list[dict]) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, len(chunk), size):
                ingest(actor=user, events=chunk[start : start + size], batch=True)

        return run

    again = _renewed(events, 2027)
    return [
        _phase(f"service batches of {size} (new catalog)", len(events), calls(events), profile),
        _phase(f"service batches of {size} (known datasets, new runs)", len(again), calls(again), profile),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per phase")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--db", default="steward_bench_ingest_profile")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (to explain queries)")
    parser.add_argument(
        "--batches-only",
        action="store_true",
        help="only the batch path: --events events in calls of --batch on an empty catalog, then as new runs over "
        "the datasets they created (for before/after comparisons of /lineage/batch)",
    )
    parser.add_argument(
        "--queued-only",
        action="store_true",
        help="only queued ingestion: --events events through the view one per request with Prefer: respond-async "
        "(the answer's cost), then the inbox drain that applies them (the worker's cost)",
    )
    args = parser.parse_args()
    _setup(args.db)

    import redis
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from rest_framework.test import APIClient

    from accounts.services import token_create
    from lineage.services.ingest import ingest

    user = User.objects.create_user("bench")
    user.groups.add(Group.objects.get(name="admin"))
    token = token_create(actor=user, user=user, name="bench")[1]
    n = args.events
    events = generate_heavy_events(n if args.batches_only else 6 * n)
    results = []
    try:
        if args.batches_only:
            results += _batches_only(user, events, args.batch, args.cprofile)
            print(*results, sep="\n")
            return
        if args.queued_only:
            from lineage.services import inbox

            queued = APIClient()
            queued.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

            def accept() -> None:
                for e in events[:n]:
                    res = queued.post("/api/v1/lineage", e, format="json", HTTP_PREFER="respond-async")
                    assert res.status_code == 202, res.content[:300]

            results.append(_phase("view single, queued (the answer)", n, accept, args.cprofile))
            results.append(_phase("inbox drain (applying them)", n, lambda: inbox.drain(), args.cprofile))
            print(*results, sep="\n")
            return
        # 1. service, one event per call, on an empty catalog (creating most datasets)
        chunk = events[:n]
        results.append(
            _phase(
                "service single (new catalog)",
                n,
                lambda: [ingest(actor=user, events=[e]) for e in chunk],
                args.cprofile,
            )
        )
        # 1b. what the worker then does for them: the queued tasks, run in-process one by one, as a worker would
        results.append(_worker_phase(n))
        # 2. the same events again: every one a duplicate
        results.append(
            _phase("service single (duplicates)", n, lambda: [ingest(actor=user, events=[e]) for e in chunk], False)
        )
        # 3. through the view (authentication, DRF parsing and the response), one event per request
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        chunk3 = events[n : 2 * n]

        def view() -> None:
            for e in chunk3:
                res = client.post("/api/v1/lineage", e, format="json")
                assert res.status_code in (200, 201), res.content[:300]

        results.append(_phase("view single", n, view, args.cprofile))
        # 4. batches through the service
        chunk4 = events[2 * n : 4 * n]

        def batches() -> None:
            for start in range(0, len(chunk4), args.batch):
                ingest(actor=user, events=chunk4[start : start + args.batch], batch=True)

        results.append(_phase(f"service batches of {args.batch}", len(chunk4), batches, args.cprofile))
        # 5. the first events again as new runs (new run ids, a year later): every dataset known, schemas unchanged
        again = []
        for k in range(0, n - 1, 2):
            run_id = str(uuid.uuid4())
            for e in chunk[k : k + 2]:
                copy = json.loads(json.dumps(e))
                copy["run"]["runId"] = run_id
                copy["eventTime"] = copy["eventTime"].replace("2026-", "2027-", 1)
                again.append(copy)
        results.append(
            _phase(
                "service single (known datasets, schemas unchanged)",
                len(again),
                lambda: [ingest(actor=user, events=[e]) for e in again],
                False,
            )
        )
        # 6. the final writes pipelined (one round trip) or not, in interleaved rounds of new runs over known
        # datasets (so that a change in the machine's load hits both alike)
        results.append(_pipeline_ab(user, chunk, rounds=6))
    finally:
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        print(f"[profile] tasks queued on {queue}: {broker.llen(queue)} (deleted)")
        broker.delete(queue)
        # The coalesced sets and their "queued" flags too: left behind, the next run's writes would see a task
        # queued already and queue none (steward.tasks.enqueue_coalesced_on_commit).
        for key in broker.scan_iter(f"steward:coalesce:{queue}:*"):
            broker.delete(key)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            fresh_database(args.db)
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
