"""`make run`'s code path: SQLite, a real Celery worker on the filesystem broker, the demo data, search."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCRUB = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_SETTINGS_MODULE")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run.sh exited early ({proc.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}")
        try:
            result = predicate()
            if result:
                return result
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_embedded_default_serves_readyz_and_search_with_a_live_worker(tmp_path):
    port = _free_port()
    # The test settings point OIDC at the test Keycloak through OIDC_*: `make run` stays local-login.
    env = {k: v for k, v in os.environ.items() if k not in SCRUB and not k.startswith("OIDC_")}
    env.update(STEWARD_STATE_DIR=str(tmp_path / "state"), STEWARD_PORT=str(port))
    log = tmp_path / "run.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: the demo load shares two cores with whatever else runs (the figure is printed below).
        ready = _wait(lambda: requests.get(f"{base}/readyz", timeout=5), 240, "/readyz", proc, log)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "database": "ok",
            "broker": "ok",
            "search": "ok",
            "graph": "ok",
            "workspaces": "ok",
        }
        first_page_seconds = time.monotonic() - started
        # Served by granian (a production WSGI server), not Django's development server; static files too.
        assert ready.headers.get("Server") == "granian", ready.headers
        htmx = requests.get(f"{base}/static/vendor/htmx/htmx.min.js", timeout=10)
        assert htmx.status_code == 200 and b"htmx" in htmx.content[:2000]
        assert (
            "script-src 'self'"
            in requests.get(f"{base}/accounts/login/", timeout=10).headers["Content-Security-Policy"]
        )
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        assert "steward-demo" in log.read_text()

        session = requests.Session()
        login = session.get(f"{base}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        done = session.post(
            f"{base}/accounts/login/",
            data={"username": "stella", "password": "steward-demo", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        )
        assert done.status_code == 200 and "stella" in done.text

        found = session.get(f"{base}/api/v1/search", params={"q": "orders"}, timeout=10).json()
        assert found["total"] > 0
        assert dict((f["value"], f["count"]) for f in found["facets"]["platform"]).keys() <= {"postgres", "s3", "kafka"}

        # A write is indexed by the real worker (through the filesystem broker), not in-process.
        csrf = session.cookies["csrftoken"]
        created = session.post(
            f"{base}/api/v1/datasets",
            json={"namespace": "s3://datalake", "name": "curated/zebra/sightings"},
            headers={"X-CSRFToken": csrf, "Referer": base},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        _wait(
            lambda: session.get(f"{base}/api/v1/search", params={"q": "zebra"}, timeout=5).json()["total"] == 1,
            120,
            "the worker to index the new dataset",
            proc,
            log,
        )
        # The demo lineage is there, and a new tag propagates downstream through the real worker.
        pg = "postgres://warehouse.internal:5432"
        graph = session.get(
            f"{base}/api/v1/lineage/graph",
            params={"namespace": pg, "name": "marts.customer_360", "direction": "upstream", "depth": 3},
            timeout=10,
        ).json()
        assert {n["name"] for n in graph["nodes"] if n["kind"] == "dataset"} >= {"marts.sales_summary"}
        finance = session.get(
            f"{base}/api/v1/datasets/lookup", params={"namespace": pg, "name": "finance.public.ledger"}, timeout=10
        ).json()
        tagged = session.post(
            f"{base}/api/v1/datasets/{finance['id']}/tags",
            json={"key": "health"},
            headers={"X-CSRFToken": csrf, "Referer": base},
            timeout=10,
        )
        assert tagged.status_code == 201, tagged.text
        # Governance on SQLite: the demo's C2 grant of sam on the ledger is suspended by the new C4 tag at once,
        # sam's C4 request waits in the steward's queue, and the decision API answers.
        grants = session.get(f"{base}/api/v1/grants", params={"user": "sam", "dataset": finance["id"]}, timeout=10)
        assert [g["state"] for g in grants.json()["results"]] == ["suspended"], grants.text
        queue = session.get(f"{base}/api/v1/access-requests", params={"awaiting": "me"}, timeout=10).json()
        assert {d["name"] for r in queue["results"] for d in r["datasets"]} == {"hr.public.employees"}
        decided = session.post(
            f"{base}/api/v1/authorize",
            json={"subject": "stella", "action": "read", "asset": {"namespace": pg, "name": "finance.public.ledger"}},
            headers={"X-CSRFToken": csrf, "Referer": base},
            timeout=10,
        )
        assert decided.json() == {"decision": "deny", "reason": "no_grant", "grant_id": None, "expires_at": None}
        mart = session.get(
            f"{base}/api/v1/datasets/lookup", params={"namespace": pg, "name": "marts.finance_summary"}, timeout=10
        ).json()
        _wait(
            lambda: (
                "health"
                in {
                    t["tag"]
                    for t in session.get(f"{base}/api/v1/datasets/{mart['id']}/tags", timeout=5).json()["propagated"]
                }
            ),
            120,
            "the worker to propagate the tag",
            proc,
            log,
        )
        print(f"embedded: first page after {first_page_seconds:.1f}s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    state = tmp_path / "state" / "run"
    assert not (state / "worker.pid").exists() and not (state / "beat.pid").exists()
    # The server's access log goes to a file, not the terminal.
    assert '"GET /readyz HTTP/1.1" 200' in (state / "access.log").read_text()
    assert "/readyz" not in log.read_text()
