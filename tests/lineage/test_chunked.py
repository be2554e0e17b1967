"""Chunked request bodies, as the OpenLineage Java client (Spark, Flink) sends them (issue 17).

The Java client's HTTP transport (Apache HttpClient 5) streams each event with ``Transfer-Encoding: chunked``
and no ``Content-Length``; with ``compression: gzip`` the gzip stream is chunked too. These tests write that
request byte for byte on a socket, against the development server (``make run``; pytest's live server is the
same server) and against both production servers (granian, gunicorn), all live.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from accounts.services import token_create
from lineage.models import Edge, LineageEvent
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, complete

ROOT = Path(__file__).resolve().parents[2]


def java_client_request(host: str, port: int, token: str, event: dict[str, Any], *, gzipped: bool) -> bytes:
    """The request openlineage-java's HttpTransport writes: chunks of at most 2,048 bytes (hex sizes, as
    Apache HttpClient 5's ChunkedOutputStream), then the last chunk and an empty trailer."""
    payload = json.dumps(event).encode()
    if gzipped:
        payload = gzip.compress(payload)
    head = [
        "POST /api/v1/lineage HTTP/1.1",
        "Accept: application/json",
        "Accept-Encoding: gzip, x-gzip, deflate",
        "Content-Type: application/json; charset=UTF-8",
        f"Authorization: Bearer {token}",
        *(["Content-Encoding: gzip"] if gzipped else []),
        "Transfer-Encoding: chunked",
        f"Host: {host}:{port}",
        "Connection: keep-alive",
        "User-Agent: Apache-HttpClient/5.4.1 (Java/17.0.13)",
    ]
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 2048]), payload[i : i + 2048]) for i in range(0, len(payload), 2048)
    )
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body + b"0\r\n\r\n"


def send(host: str, port: int, requests: list[bytes]) -> list[tuple[int, bytes]]:
    """Send the requests one after the other on one keep-alive connection; each answer's status and body."""
    answers = []
    with socket.create_connection((host, port), timeout=30) as sock:
        reader = sock.makefile("rb")
        for request in requests:
            sock.sendall(request)
            status = int(reader.readline().split()[1])
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            if "content-length" in headers:
                content = reader.read(int(headers["content-length"]))
            else:
                content = b""
                while (size := int(reader.readline().split(b";")[0], 16)) != 0:
                    content += reader.read(size)
                    reader.readline()
                reader.readline()
            answers.append((status, content))
    return answers


def big_event(job: str, when: str) -> dict[str, Any]:
    """A COMPLETE event over several chunks (a Spark plan facet of ~20 kB)."""
    event = complete(job, ["raw"], ["clean"], when=when)
    event["run"]["facets"]["spark.logicalPlan"] = {"_producer": "x", "plan": ["Project [id#1]"] * 1200}
    return event


@pytest.fixture
def token(db) -> str:
    producer = make_producer(make_user("svc-spark"), NS, "etl")
    return token_create(actor=producer, user=producer, name="spark", scopes=["lineage:write"])[1]


def check_both(host: str, port: int, token: str) -> None:
    plain, zipped = big_event("plain", "2026-01-01T12:01:00Z"), big_event("zipped", "2026-01-01T12:02:00Z")
    answers = send(
        host,
        port,
        [
            java_client_request(host, port, token, plain, gzipped=False),
            java_client_request(host, port, token, zipped, gzipped=True),
        ],
    )
    assert [status for status, _ in answers] == [201, 201], answers
    assert [json.loads(content)["status"] for _, content in answers] == ["applied", "applied"]
    assert LineageEvent.objects.count() == 2
    assert set(Edge.objects.values_list("job__name", flat=True)) == {"plain", "zipped"}


@pytest.mark.django_db(transaction=True)
def test_chunked_events_plain_and_gzip_land_through_the_development_server(live_server, token):
    host, port = live_server.thread.host, live_server.thread.port
    check_both(host, port, token)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_a_413(live_server, token, settings):
    settings.STEWARD_LINEAGE_MAX_EVENT_BYTES = 5_000
    host, port = live_server.thread.host, live_server.thread.port
    ((status, content),) = send(
        host, port, [java_client_request(host, port, token, big_event("x", "2026-01-01T12:01:00Z"), gzipped=False)]
    )
    assert status == 413, content
    assert not LineageEvent.objects.exists()


def bind(server: str, port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)] if server == "granian" else ["-b", f"127.0.0.1:{port}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {
    "gunicorn": ["-m", "gunicorn", "-w", "1", "-k", "gthread", "steward.wsgi"],
    "granian": ["-m", "granian", "--interface", "wsgi", "--workers", "1", "steward.wsgi:application"],
}


@pytest.fixture(params=sorted(SERVERS))
def served(request, transactional_db) -> Iterator[tuple[str, int]]:
    """Each production server Steward runs under (granian by default, gunicorn as the alternative), serving
    steward.wsgi on loopback, on the test database; stopped by its pid."""
    port = _free_port()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "steward.settings.test",
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, *SERVERS[request.param], *bind(request.param, port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{request.param} did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_chunked_events_plain_and_gzip_land_through_each_server(served, token):
    check_both(*served, token)
