"""Peer benchmark: Steward's decision API beside Open Policy Agent answering the same question from the same data.

1. Build OPA (``scripts/opa.sh``: ``go install`` from the Go module proxy, cached outside the clone) and seed
   Steward as ``bench/authorize.py`` does: 10,000 users, 1,000 datasets, 100,000 grants (85% in force, 10%
   expired, 5% revoked).
2. Start ``opa run --server`` on a port of its own (stopped by its pid) and load the same grants, read back from
   Steward's database, as a data document ``data.grants[username][namespace][name] = [windows]`` (times in
   nanoseconds since the epoch) beside a small Rego policy (``POLICY``) answering the same question: is a grant
   in force for this subject and dataset now (``valid_from <= now < valid_until``, not revoked by now, not
   suspended), and if not, the most telling reason, as Steward orders them.
3. Check both give the same (decision, reason) on 500 questions.
4. Interleaved rounds, same clients (``http.client`` keep-alive processes), same machine, same questions (60%
   allowed, 20% no grant, 20% expired): single decisions (Steward ``POST /api/v1/authorize``, OPA
   ``POST /v1/data/steward/decision``) and batches of 1,000 (Steward ``/api/v1/authorize/batch``, OPA the
   policy's ``batch`` rule over ``input.requests``: OPA has no batch endpoint of its own). Rates, p50/p99 and
   Steward/OPA ratios; the load average beside every figure.

Goals: single >= 0.5x OPA's rate with p99 <= 2x OPA's; batches >= OPA's rate. Results: bench/results/opa.json.

Usage: python bench/peers/opa.py [--rounds 3] [--requests 6000] [--batches 20] [--concurrency 3] [--workers 2]
                                  [--threads 2] [--server granian|gunicorn] [--database NAME]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import RESULTS, free_port, fresh_database, processes, save, server_text  # noqa: E402
from bench.authorize import drive, loadavg, mix, prepare, warm  # noqa: E402

DB = "steward_bench_opa"

POLICY = """
package steward

import rego.v1

# A grant's state at ``at`` (ns since the epoch), in Steward's order of checks (governance/authorization.py).
state(g, at) := "not_yet_valid" if at < g.f
else := "expired" if at >= g.u
else := "revoked" if {
	g.r != null
	g.r <= at
}
else := "suspended" if g.s
else := "granted"

# Of a pair's grant states: granted if any is; else the most telling denial; no_grant if there is none.
reason(s) := "granted" if "granted" in s
else := "suspended" if "suspended" in s
else := "revoked" if "revoked" in s
else := "not_yet_valid" if "not_yet_valid" in s
else := "expired" if "expired" in s
else := "no_grant"

states(r, at) := {state(g, at) | some g in object.get(data.grants, [r.subject, r.asset.namespace, r.asset.name], [])}

verdict("granted") := "allow"

verdict(why) := "deny" if why != "granted"

answer(r, at) := {"decision": verdict(why), "reason": why} if why := reason(states(r, at))

decision := answer(input, time.now_ns())

batch := [answer(r, now) | some r in input.requests] if now := time.now_ns()
"""


# --- OPA -------------------------------------------------------------------------------------------------------------


def build_opa() -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "opa.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _ns(value) -> int | None:
    return None if value is None else int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


def grants_document(url: str) -> dict:
    """Every user grant, read back from Steward's database: ``{username: {namespace: {name: [window]}}}``."""
    doc: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT u.username, d.namespace, d.name, g.valid_from, g.valid_until, g.revoked_at, g.suspended_at "
            "FROM governance_grant g JOIN auth_user u ON u.id = g.user_id JOIN catalog_dataset d ON d.id = g.dataset_id"
        ).fetchall()
    for username, namespace, name, vf, vu, ra, sa in rows:
        doc[username][namespace][name].append({"f": _ns(vf), "u": _ns(vu), "r": _ns(ra), "s": sa is not None})
    return json.loads(json.dumps(doc))


def _request(port: int, method: str, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(method, path, body=body, headers={"Content-Type": content_type})
    res = conn.getresponse()
    data = res.read()
    conn.close()
    if res.status >= 300:
        raise RuntimeError(f"OPA {method} {path}: HTTP {res.status}: {data[:300]!r}")
    return data


class Opa:
    """``opa run --server`` on a port of its own, stopped by its pid."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        logs = RESULTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "run", "--server", "--addr", f"127.0.0.1:{self.port}", "--log-level", "error"],
            stdout=(logs / "opa.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                _request(self.port, "GET", "/health", b"")
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise RuntimeError("OPA did not start; see bench/results/logs/opa.log") from None
                time.sleep(0.2)
        self.base = f"http://127.0.0.1:{self.port}"

    def load(self, policy: str, data: dict) -> float:
        t0 = time.perf_counter()
        _request(self.port, "PUT", "/v1/policies/steward", policy.encode(), "text/plain")
        _request(self.port, "PUT", "/v1/data/grants", json.dumps(data).encode())
        return round(time.perf_counter() - t0, 2)

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)


# --- checks and rounds -----------------------------------------------------------------------------------------------


def check_same_answers(steward: str, opa: Opa, questions: list[dict]) -> int:
    """Steward's and OPA's (decision, reason) on each question; returns how many agree (raises on any that don't)."""
    conn = http.client.HTTPConnection(steward.split("//")[1].split(":")[0], int(steward.rsplit(":", 1)[1]))
    conn.request(
        "POST",
        "/api/v1/authorize/batch",
        body=json.dumps({"requests": questions}),
        headers={"Authorization": os.environ["BENCH_TOKEN"], "Content-Type": "application/json"},
    )
    ours = [(d["decision"], d["reason"]) for d in json.loads(conn.getresponse().read())["decisions"]]
    conn.close()
    theirs = []
    for q in questions:
        answer = json.loads(_request(opa.port, "POST", "/v1/data/steward/decision", json.dumps({"input": q}).encode()))
        theirs.append((answer["result"]["decision"], answer["result"]["reason"]))
    wrong = [(q, a, b) for q, a, b in zip(questions, ours, theirs, strict=True) if a != b]
    if wrong:
        raise AssertionError(f"{len(wrong)} answers differ, e.g. {wrong[:3]}")
    return len(questions)


def _phase(base: str, path: str, bodies: list[bytes], concurrency: int, per_call: int) -> dict:
    before = loadavg()
    out = drive(base, path, bodies, concurrency)
    out["decisions_per_s"] = round(out["calls"] * per_call / out["wall_s"], 1)
    out["load_average_before"], out["load_average_after"] = before, loadavg()
    out.pop("reasons", None)
    return out


def combine(rounds: list[dict]) -> dict:
    """All rounds of one phase together: total calls over total wall time; percentiles over every round's."""
    calls = sum(r["calls"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    per_call = rounds[0]["decisions_per_s"] * rounds[0]["wall_s"] / rounds[0]["calls"]
    return {
        "decisions_per_s": round(calls * per_call / wall, 1),
        "p50_ms": sorted(r["p50_ms"] for r in rounds)[len(rounds) // 2],
        "p99_ms": sorted(r["p99_ms"] for r in rounds)[len(rounds) // 2],
        "calls": calls,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6_000, help="single decisions per round and engine")
    parser.add_argument("--batches", type=int, default=20, help="batch calls per round and engine")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--server",
        choices=["gunicorn", "granian"],
        default="granian",
        help="granian's WSGI server (HTTP in Rust; the served default), or gunicorn -k gthread; --workers x --threads",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--database", default=DB, help=f"throw-away database to seed (dropped first; {DB})")
    args = parser.parse_args()
    rng = random.Random(22)

    binary = build_opa()
    version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    url, env, _token, asks, seed_s = prepare(
        args.database, users=args.users, datasets=args.datasets, grants=args.grants, rng=rng
    )
    document = grants_document(url)
    questions = [body for _, body in mix(asks, 500, rng)]
    single = [
        [body for _, body in mix(asks, args.requests, rng)] for _ in range(args.rounds)
    ]  # the same questions to both engines in a round
    batches = [
        [[body for _, body in mix(asks, args.batch_size, rng)] for _ in range(args.batches)] for _ in range(args.rounds)
    ]
    result: dict = {
        "opa": version,
        "seed": {"users": args.users, "datasets": args.datasets, "grants": args.grants, "seconds": seed_s},
    }
    opa = Opa(binary)
    try:
        result["opa_load_s"] = opa.load(POLICY, document)
        del document
        with processes(
            {**env, "STEWARD_LOG_LEVEL": "WARNING"},
            web_workers=args.workers,
            celery=False,
            worker_class="gthread",
            threads=args.threads,
            server=args.server,
        ) as base:
            warm_single = [json.dumps(q).encode() for q in questions]
            warm_batch = [json.dumps({"requests": b}).encode() for b in batches[0][:2]]
            warm(base, warm_single, warm_batch, args.concurrency, args.batch_concurrency)
            result["answers_identical"] = check_same_answers(base, opa, questions)
            print(f"[opa] {version}: same (decision, reason) on {result['answers_identical']} questions", flush=True)
            drive(opa.base, "/v1/data/steward/decision", [json.dumps({"input": q}).encode() for q in questions], 3)
            phases: dict[str, list[dict]] = defaultdict(list)
            for r in range(args.rounds):
                steward_single = [json.dumps(q).encode() for q in single[r]]
                opa_single = [json.dumps({"input": q}).encode() for q in single[r]]
                steward_batch = [json.dumps({"requests": b}).encode() for b in batches[r]]
                opa_batch = [json.dumps({"input": {"requests": b}}).encode() for b in batches[r]]
                order = [("steward", "opa"), ("opa", "steward")][r % 2]  # who goes first alternates
                for engine in order:
                    if engine == "steward":
                        phases["steward_single"].append(
                            _phase(base, "/api/v1/authorize", steward_single, args.concurrency, 1)
                        )
                    else:
                        phases["opa_single"].append(
                            _phase(opa.base, "/v1/data/steward/decision", opa_single, args.concurrency, 1)
                        )
                for engine in order:
                    if engine == "steward":
                        phases["steward_batch"].append(
                            _phase(
                                base, "/api/v1/authorize/batch", steward_batch, args.batch_concurrency, args.batch_size
                            )
                        )
                    else:
                        phases["opa_batch"].append(
                            _phase(
                                opa.base, "/v1/data/steward/batch", opa_batch, args.batch_concurrency, args.batch_size
                            )
                        )
                line = ", ".join(
                    f"{name} {runs[-1]['decisions_per_s']:,.0f}/s p99 {runs[-1]['p99_ms']} ms"
                    for name, runs in phases.items()
                )
                print(f"[opa] round {r + 1}: {line} (load {loadavg()})", flush=True)
    finally:
        opa.stop()
    summary = {name: combine(runs) for name, runs in phases.items()}
    ratios = {
        "single_rate": round(
            summary["steward_single"]["decisions_per_s"] / summary["opa_single"]["decisions_per_s"], 2
        ),
        "single_p99": round(summary["steward_single"]["p99_ms"] / summary["opa_single"]["p99_ms"], 2),
        "batch_rate": round(summary["steward_batch"]["decisions_per_s"] / summary["opa_batch"]["decisions_per_s"], 2),
    }
    result.update(summary)
    result["steward_over_opa"] = ratios
    result["goals"] = {
        "single_rate": ">= 0.5",
        "single_p99": "<= 2",
        "batch_rate": ">= 1",
        "met": ratios["single_rate"] >= 0.5 and ratios["single_p99"] <= 2 and ratios["batch_rate"] >= 1,
    }
    result["settings"] = {
        "steward": f"{server_text(args)} (keep-alive), decision index on",
        "opa": "opa run --server (GOMAXPROCS = all cores), data document + Rego policy (bench/peers/opa.py POLICY)",
        "clients": f"{args.concurrency} processes (single), {args.batch_concurrency} (batch), http.client keep-alive",
        "mix": "60% allowed, 20% no grant, 20% expired; subject by username, asset by namespace and name",
        "rounds": f"{args.rounds} interleaved (the engine going first alternates)",
        "cpus": os.cpu_count(),
    }
    for name, s in summary.items():
        print(f"[opa] {name}: {s['decisions_per_s']:,.0f} decisions/s, p50 {s['p50_ms']} p99 {s['p99_ms']} ms")
    print(f"[opa] Steward/OPA: {ratios} (goals met: {result['goals']['met']})")
    path = save("opa", result)
    print(f"[opa] saved {path}")
    if os.environ.get("STEWARD_BENCH_KEEP_DB") != "1":
        fresh_database(args.database)


if __name__ == "__main__":
    main()
