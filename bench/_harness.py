"""Shared benchmark harness: a throw-away PostgreSQL database, a gunicorn server, a Celery worker, timing."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("STEWARD_BENCH_PG", "postgres://steward:steward@127.0.0.1:54320/steward")
REDIS_URL = os.environ.get("STEWARD_BENCH_REDIS", "redis://127.0.0.1:56379/3")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server (one an earlier run kept, for ``--reuse``)."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def fresh_database(name: str) -> str:
    """Drop and create database ``name`` on the test server; returns its URL."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER steward')
    return database_url(name)


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_TASK_ALWAYS_EAGER")}
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=REDIS_URL,
        STEWARD_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="steward.settings.base",
        # A queue of this database's own: benchmarks of other worktrees share the broker database, and their
        # workers would otherwise take (and drop) this run's indexing tasks.
        STEWARD_CELERY_QUEUE=f"bench-{database_url.rsplit('/', 1)[-1]}",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


# Process groups of the servers started by ``processes`` and still running: a SIGTERM (``timeout``, a CI
# cancel) or SIGHUP to the bench stops them before the bench exits, instead of leaving them running.
_children: list[subprocess.Popen] = []
_owner_pid = os.getpid()  # forked children (client pools) inherit the handler: only this process stops servers


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group, wait up to 30 s in all, then SIGKILL what is left."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _on_terminate(signum: int, _frame: object) -> None:
    if os.getpid() != _owner_pid:  # a forked client process terminated by its pool: die as it would have by default
        os._exit(128 + signum)
    _stop(list(_children))
    _children.clear()
    # Exit as a process killed by this signal would (the shell's 128 + signal), after the ``finally`` blocks.
    raise SystemExit(128 + signum)


def _default_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def map_in_processes(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``fn`` over ``items``, one forked client process each, all at once; the results in order. The children get
    the default signal handlers back (not this bench's, which stops the servers) and end on their own when the
    work is done (``close``/``join``, not ``terminate``: a pool terminated while a child held its queue's lock
    left the bench waiting forever)."""
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(len(items), initializer=_default_signals)
    try:
        results = pool.map(fn, items)
    except BaseException:
        pool.terminate()
        raise
    pool.close()
    pool.join()
    return results


def _install_terminate_handler() -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _on_terminate)


@contextmanager
def processes(
    env: dict[str, str],
    *,
    web_workers: int = 3,
    celery: bool = True,
    worker_class: str = "sync",
    threads: int = 1,
    server: str = "gunicorn",
    celery_processes: int = 1,
) -> Iterator[str]:
    """Run the web server (and a Celery worker) against ``env``; yields the base URL; stops both by pid.

    ``server="gunicorn"``: ``worker_class="gthread"`` (with ``threads``) keeps client connections alive between
    requests; the default sync worker closes each one. ``server="granian"``: granian's WSGI interface (HTTP in
    Rust, keep-alive), ``web_workers`` processes with ``threads`` blocking threads each (``worker_class`` unused).
    ``celery_processes``: one solo worker, or a prefork worker of that many processes."""
    _install_terminate_handler()
    port = free_port()
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if server == "granian":
        command = [
            *(sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(web_workers), "--blocking-threads", str(threads), "--log-level", "warning"),
            "steward.wsgi:application",
        ]
    else:
        command = [
            *(sys.executable, "-m", "gunicorn", "steward.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(web_workers)),
            *("--timeout", "300", "--max-requests", "0", "--log-level", "warning", "-k", worker_class),
            *("--threads", str(threads)),
        ]
    procs = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=(logs / "gunicorn.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ]
    _children.extend(procs)
    if celery:
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "steward", "worker", "--loglevel=WARNING"),
                    *(("--pool=solo",) if celery_processes == 1 else ("--pool=prefork", f"-c{celery_processes}")),
                ],
                cwd=ROOT,
                env=env,
                stdout=(logs / "celery.log").open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _children.append(procs[-1])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"{server} did not start; see bench/results/logs/gunicorn.log")
        yield base
    finally:
        live = [proc for proc in procs if proc in _children]
        for proc in live:
            _children.remove(proc)
        _stop(live)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 2)

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "mean_ms": round(statistics.fmean(ordered), 2)}


def load(
    call: Callable[[requests.Session, int], None],
    *,
    requests_total: int,
    concurrency: int,
    headers: dict[str, str],
    samples: list[float] | None = None,
) -> dict[str, float]:
    """Run ``call(session, i)`` ``requests_total`` times over ``concurrency`` keep-alive sessions (latencies are
    also appended to ``samples`` when given)."""
    latencies: list[float] = []
    per_worker = requests_total // concurrency

    def worker(offset: int) -> list[float]:
        session = requests.Session()
        session.headers.update(headers)
        out = []
        for i in range(per_worker):
            t0 = time.perf_counter()
            call(session, offset * per_worker + i)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for chunk in pool.map(worker, range(concurrency)):
            latencies.extend(chunk)
    wall = time.perf_counter() - started
    if samples is not None:
        samples.extend(latencies)
    return {**percentiles(latencies), "requests": len(latencies), "qps": round(len(latencies) / wall, 1)}


def keepalive_posts(
    base: str, path: str, headers: dict[str, str], bodies: list[bytes], start_at: float = 0.0
) -> Iterator[tuple[float, int, bytes]]:
    """POST each body in turn on one keep-alive ``http.client`` connection (a client process's loop, far lighter
    than ``requests``), from ``start_at`` (epoch seconds); yields (latency ms, status, body) for each."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        for body in bodies:
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            yield (time.perf_counter() - t0) * 1000, res.status, data
    finally:
        conn.close()


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def server_text(args: Any) -> str:
    """How a bench's ``--server``/``--workers``/``--threads`` serve Steward, for its results."""
    if args.server == "granian":
        return f"granian --interface wsgi --workers {args.workers} --blocking-threads {args.threads}"
    return f"gunicorn -k gthread -w {args.workers} --threads {args.threads}"
