"""The SDK and the ``steward`` command against a live server (pytest-django's ``live_server``, a real HTTP server
in a thread of this process, on the test PostgreSQL), with API tokens of a data scientist, a data steward, a
lineage producer and a compliance officer. The command runs as a separate process, configured as a user would
configure it: ``STEWARD_URL`` and ``STEWARD_TOKEN`` in its environment (and a HOME of its own, so no config file
of the machine is read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from accounts.services import token_create
from steward_client import StewardClient
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cast:
    url: str
    tokens: dict[str, str]
    users: dict[str, Any]

    def client(self, who: str) -> StewardClient:
        return StewardClient(self.url, self.tokens[who], retries=1, backoff=0.05)


@pytest.fixture
def cast(live_server: Any, monkeypatch: pytest.MonkeyPatch, data_scientist, data_steward, compliance_officer) -> Cast:
    # The live server's request threads outlive a kept-alive connection: they close their database connection
    # after each request, so none is left open when the test database is dropped.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    producer = make_producer(make_user("pipeline"), NS, "etl")
    users = {"dana": data_scientist, "stella": data_steward, "carl": compliance_officer, "pipeline": producer}
    tokens = {name: token_create(actor=user, user=user, name="sdk")[1] for name, user in users.items()}
    return Cast(url=live_server.url, tokens=tokens, users=users)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(cast: Cast, tmp_path: Path) -> Callable[..., Ran]:
    """``cli("dana", "search", "orders")``: the ``steward`` command as that user; ``token=`` overrides the token,
    ``env=`` adds variables."""
    home = tmp_path / "home"
    home.mkdir()

    def run(who: str | None, *args: str, token: str | None = None, env: dict[str, str] | None = None) -> Ran:
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "STEWARD_URL": cast.url,
            **({"STEWARD_TOKEN": token or cast.tokens[who]} if (who or token) else {}),
            **(env or {}),
        }
        done = subprocess.run(
            [sys.executable, "-m", "steward_client", *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    return run
