"""Session checks for the real servers ``make test`` starts (scripts/services). A missing one fails loudly."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379/0")
    if not _reachable(url, 6379):
        pytest.fail(f"Redis is not running at {url}; start it with `scripts/services/redis.sh start` (make test does).")
    return url


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    """The Elasticsearch test server (scripts/services/elasticsearch.sh; `make test` starts it): loopback only."""
    url = os.environ.get("STEWARD_TEST_ELASTICSEARCH_URL", "http://127.0.0.1:59200")
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        pytest.fail(f"STEWARD_TEST_ELASTICSEARCH_URL={url!r}: the tests only talk to an Elasticsearch on loopback.")
    if not _reachable(url, 9200):
        pytest.fail(
            f"Elasticsearch is not running at {url}; start it with `scripts/services/elasticsearch.sh start` "
            "(make test does)."
        )
    return url


@pytest.fixture(scope="session")
def keycloak_issuer() -> str:
    """The Keycloak test server's realm (scripts/services/keycloak.sh): the issuer the test settings trust."""
    from django.conf import settings

    issuer = settings.OIDC_OP_ISSUER
    if not issuer or not _reachable(issuer, 80):
        pytest.fail(
            f"Keycloak is not running at {issuer}; start it with `scripts/services/keycloak.sh start` (make test does)."
        )
    return issuer


def _default_kubeconfig() -> Path:
    """``.services/kube/kubeconfig`` of this checkout, or of the main checkout when this is a linked git worktree
    without servers of its own (the servers listen on fixed loopback ports, so one set serves every worktree)."""
    root = Path(__file__).resolve().parent.parent
    here = root / ".services" / "kube" / "kubeconfig"
    if here.is_file():
        return here
    try:
        common = subprocess.run(
            ["git", "rev-parse", "--git-common-dir"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return here
    main = (root / common).resolve().parent / ".services" / "kube" / "kubeconfig" if common else here
    return main if main.is_file() else here


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The kube-apiserver test server's kubeconfig (scripts/services/kube.sh writes it): loopback only.

    ``STEWARD_KUBECONFIG`` overrides where it is looked for."""
    path = os.environ.get("STEWARD_KUBECONFIG", str(_default_kubeconfig()))
    start = "start it with `scripts/services/kube.sh start` (make test does)"
    if not Path(path).is_file():
        pytest.fail(f"no kubeconfig at {path}: the kube-apiserver test server is not set up; {start}.")
    server = yaml.safe_load(Path(path).read_text())["clusters"][0]["cluster"]["server"]
    if urlparse(server).hostname not in ("127.0.0.1", "localhost", "::1"):
        pytest.fail(f"{path} points at {server}: the tests only talk to a kube-apiserver on loopback.")
    if not _reachable(server, 443):
        pytest.fail(f"kube-apiserver is not running at {server}; {start}.")
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql") and not _reachable(f"postgres://{db['HOST']}:{db['PORT']}", 5432):
        raise pytest.UsageError(
            f"PostgreSQL is not running at {db['HOST']}:{db['PORT']}; start it with "
            "`scripts/services/postgres.sh start` (make test does)."
        )
