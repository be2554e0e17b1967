"""Decision benchmark: ``POST /api/v1/authorize`` and ``/authorize/batch`` over HTTP with 10k users, 100k grants.

1. Seed a fresh database: ``--users`` users, ``--datasets`` datasets and ``--grants`` grants written with
   PostgreSQL ``COPY`` straight into ``auth_user``, ``catalog_dataset`` and ``governance_grant`` (the access
   request flow would only re-measure approvals; the decision reads nothing else), then ``ANALYZE``. Of the
   grants 85% are in force, 10% have expired and 5% were revoked.
2. Single decisions from ``--concurrency`` client processes, each on a keep-alive connection, as a data-plane
   proxy holding an API token of a ``service`` user asks them: a subject by username and a table by
   ``{namespace, name}``; 60% allowed, 20% denied with no grant, 20% denied as expired (denials are audited,
   as in production). p50/p95/p99 latency and decisions/s.
3. Batches of ``--batch-size`` (1,000) mixed the same way: decisions/s and per-call latency.

Goals (this 2-core machine): single >= 2,000 decisions/s with p99 <= 10 ms; batch >= 20,000 decisions/s.
Each server process answers from its decision index (``governance/decision_index.py``), checked against the
decision generation on every call; the warm-up lets every process build it first (as a long-running server has).
The server is granian's WSGI server as served (HTTP parsing in Rust; ``--workers`` processes of ``--threads``
blocking threads), or with ``--server gunicorn`` gunicorn (``--workers`` gthread workers of ``--threads``
threads, keep-alive): a check of how much of a call is the HTTP server's. The load generator shares the
machine, so its CPU is part of the figures. ``--profile`` also runs the fast path in-process (no HTTP) for single
calls and for batches: CPU and wall time per call and the functions that take the most time. The load average
before and after each phase is saved with the results. Results: bench/results/authorize.json.

Usage: python bench/authorize.py [--users 10000] [--grants 100000] [--datasets 1000] [--requests 20000]
                                  [--concurrency 3] [--batches 60] [--workers 2] [--threads 2]
                                  [--server granian|gunicorn] [--profile] [--database NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    bench_env,
    fresh_database,
    keepalive_posts,
    manage,
    map_in_processes,
    percentiles,
    processes,
    save,
    server_text,
)

DB = "steward_bench_authorize"
NS = "postgres://warehouse.internal:5432"


# --- seeding ---------------------------------------------------------------------------------------------------------


def seed(url: str, *, users: int, datasets: int, grants: int, rng: random.Random) -> dict[str, list]:
    """COPY users, datasets and grants; returns the (username, table) pairs to ask about, by expected reason."""
    now = datetime.now(UTC)
    per_user = max(1, grants // users)
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            "COPY auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,"
            " date_joined) FROM STDIN"
        ) as copy:
            for i in range(users):
                copy.write_row(("!", False, f"user{i:05d}", "", "", f"user{i:05d}@example.org", False, True, now))
        user_ids = dict(conn.execute("SELECT username, id FROM auth_user WHERE username LIKE 'user%'").fetchall())
        tables = [f"sales.public.t{i:04d}" for i in range(datasets)]
        dataset_ids = {name: uuid.uuid4() for name in tables}
        with conn.cursor().copy(
            "COPY catalog_dataset (id, namespace, name, platform, description, classification,"
            " effective_classification, properties, created_at, updated_at) FROM STDIN"
        ) as copy:
            for name, pk in dataset_ids.items():
                copy.write_row((pk, NS, name, "postgres", "", "C2", "C2", "{}", now, now))
        asks: dict[str, list] = {"allow": [], "expired": [], "no_grant": []}
        with conn.cursor().copy(
            "COPY governance_grant (id, user_id, workspace_label, dataset_id, privilege, valid_from, valid_until,"
            " approved_level, state, revoked_at, revoke_reason, created_at) FROM STDIN"
        ) as copy:
            written = 0
            for username, uid in sorted(user_ids.items()):
                held = rng.sample(tables, per_user + 1)
                asks["no_grant"].append((username, held.pop()))
                for table in held:
                    if written >= grants:
                        break
                    written += 1
                    roll = rng.random()
                    start = now - timedelta(days=rng.randint(11, 30))
                    if roll < 0.10:
                        row = (start, now - timedelta(hours=rng.randint(1, 240)), "expired", None)
                        asks["expired"].append((username, table))
                    elif roll < 0.15:
                        row = (start, now + timedelta(days=30), "revoked", now - timedelta(hours=1))
                    else:
                        row = (start, now + timedelta(days=rng.randint(1, 30)), "active", None)
                        asks["allow"].append((username, table))
                    vf, vu, state, revoked = row
                    did = dataset_ids[table]
                    copy.write_row((uuid.uuid4(), uid, "", did, "read", vf, vu, "C2", state, revoked, "", vf))
        conn.commit()
        conn.autocommit = True
        for table in ("auth_user", "catalog_dataset", "governance_grant"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return asks


def mix(asks: dict[str, list], count: int, rng: random.Random) -> list[tuple[str, dict]]:
    """``count`` questions: 60% allowed, 20% no grant, 20% expired; (expected reason, body)."""
    out = []
    for _ in range(count):
        roll = rng.random()
        kind = "allow" if roll < 0.6 else "no_grant" if roll < 0.8 else "expired"
        username, table = rng.choice(asks[kind])
        body = {"subject": username, "action": "read", "asset": {"namespace": NS, "name": table}}
        out.append(("granted" if kind == "allow" else kind, body))
    return out


# --- load ------------------------------------------------------------------------------------------------------------


def _client(args: tuple[str, str, list[bytes], float]) -> tuple[list[float], Counter]:
    """One client process: POST every body on one keep-alive connection; latencies (ms) and reasons seen."""
    base, path, bodies, start_at = args
    headers = {"Authorization": os.environ["BENCH_TOKEN"], "Content-Type": "application/json"}
    latencies: list[float] = []
    reasons: Counter = Counter()
    for ms, status, data in keepalive_posts(base, path, headers, bodies, start_at):
        latencies.append(ms)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {data[:300]!r}")
        answer = json.loads(data)
        answer = answer.get("result", answer)  # OPA's envelope (bench/peers/opa.py)
        for d in answer if isinstance(answer, list) else answer.get("decisions", [answer]):
            reasons[d["reason"]] += 1
    return latencies, reasons


def drive(base: str, path: str, bodies: list[bytes], concurrency: int) -> dict:
    """Spread ``bodies`` over ``concurrency`` client processes that start together; wall time from that start."""
    start_at = time.time() + 1.0
    chunks = [(base, path, bodies[i::concurrency], start_at) for i in range(concurrency)]
    results = map_in_processes(_client, chunks)
    wall = time.time() - start_at
    latencies = [ms for lat, _ in results for ms in lat]
    reasons: Counter = Counter()
    for _, seen in results:
        reasons.update(seen)
    return {**percentiles(latencies), "calls": len(latencies), "wall_s": round(wall, 2), "reasons": dict(reasons)}


def warm(base: str, single: list[bytes], batches: list[bytes], concurrency: int, batch_concurrency: int) -> None:
    """Warm every worker's connection, prepared statements and decision index (the first calls of a process are
    not what we measure): the first calls start each process's index build in a thread and are answered from
    the database meanwhile; a second round after the builds had time to finish."""
    for _ in range(2):
        drive(base, "/api/v1/authorize", single[:200], concurrency)
        drive(base, "/api/v1/authorize/batch", batches[:2], batch_concurrency)
        time.sleep(4)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def prepare(
    db: str, *, users: int, datasets: int, grants: int, rng: random.Random
) -> tuple[str, dict[str, str], str, dict[str, list], float]:
    """A fresh migrated database ``db`` with a service user's API token (also in ``BENCH_TOKEN``) and the seed;
    (url, env, token, asks, seconds the seed took)."""
    url = fresh_database(db)
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
                "u=User.objects.create_user('proxy');u.groups.add(Group.objects.get(name='service'));"
                "print(token_create(actor=u, user=u, name='bench')[1])"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    t0 = time.perf_counter()
    asks = seed(url, users=users, datasets=datasets, grants=grants, rng=rng)
    seed_s = round(time.perf_counter() - t0, 1)
    print(f"[bench] seeded {users:,} users, {datasets:,} datasets, {grants:,} grants in {seed_s}s")
    os.environ["BENCH_TOKEN"] = f"Bearer {token}"
    return url, env, token, asks, seed_s


# --- main ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=20_000, help="single decisions to time")
    parser.add_argument("--concurrency", type=int, default=3, help="client processes for single decisions")
    parser.add_argument("--batches", type=int, default=60, help="batch calls to time")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--server",
        choices=["gunicorn", "granian"],
        default="granian",
        help="granian's WSGI server (HTTP in Rust; the served default), or gunicorn -k gthread; --workers x --threads",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--profile", action="store_true", help="also profile 2,000 single decisions in-process")
    parser.add_argument("--database", default=DB, help=f"throw-away database to seed (dropped first; {DB})")
    args = parser.parse_args()
    rng = random.Random(11)

    url, env, token, asks, seed_s = prepare(
        args.database, users=args.users, datasets=args.datasets, grants=args.grants, rng=rng
    )
    single = mix(asks, args.requests, rng)
    single_bodies = [json.dumps(body).encode() for _, body in single]
    batch_bodies = [
        json.dumps({"requests": [body for _, body in mix(asks, args.batch_size, rng)]}).encode()
        for _ in range(args.batches)
    ]
    result: dict = {
        "seed": {
            "users": args.users,
            "datasets": args.datasets,
            "grants": args.grants,
            "method": "COPY into auth_user, catalog_dataset, governance_grant; VACUUM ANALYZE",
            "seconds": seed_s,
        }
    }
    server = {"STEWARD_LOG_LEVEL": "WARNING"}
    with processes(
        {**env, **server},
        web_workers=args.workers,
        celery=False,
        worker_class="gthread",
        threads=args.threads,
        server=args.server,
    ) as base:
        warm(base, single_bodies, batch_bodies, args.concurrency, args.batch_concurrency)
        load_before = loadavg()
        one = drive(base, "/api/v1/authorize", single_bodies, args.concurrency)
        one["decisions_per_s"] = round(one["calls"] / one["wall_s"], 1)
        one["load_average_after"] = loadavg()
        one["load_average_before"] = load_before
        expected = Counter(reason for reason, _ in single)
        assert one["reasons"] == dict(expected), (one["reasons"], expected)
        print(
            f"[bench] single: p50 {one['p50_ms']} p95 {one['p95_ms']} p99 {one['p99_ms']} ms, "
            f"{one['decisions_per_s']:,} decisions/s "
            f"(concurrency {args.concurrency}; load {one['load_average_after']})",
            flush=True,
        )
        load_before = loadavg()
        many = drive(base, "/api/v1/authorize/batch", batch_bodies, args.batch_concurrency)
        many["decisions_per_s"] = round(many["calls"] * args.batch_size / many["wall_s"], 1)
        many["load_average_after"] = loadavg()
        many["load_average_before"] = load_before
        many["batch_size"] = args.batch_size
        print(
            f"[bench] batch of {args.batch_size:,}: per call p50 {many['p50_ms']} p95 {many['p95_ms']} ms, "
            f"{many['decisions_per_s']:,} decisions/s (concurrency {args.batch_concurrency}; "
            f"load {many['load_average_after']})",
            flush=True,
        )
    result["single"] = one
    result["batch"] = many
    result["goals"] = {
        "single_decisions_per_s": ">= 2000",
        "single_p99_ms": "<= 10",
        "batch_decisions_per_s": ">= 20000",
        "met": one["decisions_per_s"] >= 2000 and one["p99_ms"] <= 10 and many["decisions_per_s"] >= 20000,
    }
    result["settings"] = {
        "server": f"{server_text(args)} (keep-alive)",
        "clients": f"{args.concurrency} processes (single), {args.batch_concurrency} (batch), http.client keep-alive",
        "mix": "60% allowed, 20% no grant, 20% expired; subject by username, asset by namespace and name",
        "database": "PostgreSQL (scripts/services/postgres.sh; fsync off on the test server)",
        "cpus": os.cpu_count(),
    }
    if args.profile:
        result["profile"] = profile(env, single_bodies[:3000], token, batch_bodies[:5])
    path = save("authorize", result)
    print(f"[bench] saved {path}")
    if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1":
        fresh_database(args.database)


def profile(env: dict[str, str], bodies: list[bytes], token: str, batches: list[bytes]) -> dict:
    """Profile single decisions, then batches, in-process through the served WSGI application (the fast path), no
    HTTP: per-call wall and CPU time, and the functions that take the most time (cProfile, by own time)."""
    env = {**env, "STEWARD_DECISION_INDEX": "inline"}  # built by the first call, as a served process has it
    stdin = b"\n".join(bodies) + b"\n\n" + b"\n".join(batches)  # JSON bodies hold no newline
    out = manage_stdin(env, PROFILE_SCRIPT.replace("TOKEN", token), stdin)
    print(out)
    summary: dict = {}
    for part, text in zip(("single", "batch"), out.split("=== batch ===\n"), strict=False):
        lines = text.splitlines()
        found = json.loads(next(line for line in lines if line.startswith("{")))
        summary[part] = {**found, "top_by_own_time": [line for line in lines if "(" in line and "/" in line][:20]}
    return summary


PROFILE_SCRIPT = """
import cProfile, io, json, pstats, sys, time
from steward.wsgi import application
singles, batches = sys.stdin.buffer.read().split(b"\\n\\n")
bodies, batches = singles.split(b"\\n"), batches.split(b"\\n")
def call(body, path="/api/v1/authorize"):
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": "Bearer TOKEN", "wsgi.input": io.BytesIO(body),
               "SERVER_NAME": "bench", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    b"".join(application(environ, lambda status, headers: None))
for b in bodies[:200]:
    call(b)
t, c = time.perf_counter(), time.process_time()
for b in bodies[200:1100]:
    call(b)
n = len(bodies[200:1100])
print(json.dumps({"in_process_wall_ms_per_call": round((time.perf_counter() - t) * 1000 / n, 3),
                  "in_process_cpu_ms_per_call": round((time.process_time() - c) * 1000 / n, 3)}))
prof = cProfile.Profile()
prof.enable()
for b in bodies[1100:]:
    call(b)
prof.disable()
s = io.StringIO()
pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
print(s.getvalue())
print("=== batch ===")
call(batches[0], "/api/v1/authorize/batch")
t, c = time.perf_counter(), time.process_time()
for b in batches[1:3]:
    call(b, "/api/v1/authorize/batch")
print(json.dumps({"in_process_wall_ms_per_batch": round((time.perf_counter() - t) * 1000 / 2, 3),
                  "in_process_cpu_ms_per_batch": round((time.process_time() - c) * 1000 / 2, 3)}))
prof = cProfile.Profile()
prof.enable()
for b in batches[3:]:
    call(b, "/api/v1/authorize/batch")
prof.disable()
s = io.StringIO()
pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
print(s.getvalue())
"""


def manage_stdin(env: dict[str, str], script: str, stdin: bytes) -> str:
    import subprocess

    from bench._harness import ROOT

    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        input=stdin,
        check=True,
        capture_output=True,
    )
    return out.stdout.decode()


if __name__ == "__main__":
    main()
