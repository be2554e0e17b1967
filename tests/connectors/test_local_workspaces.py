"""The ``local`` workspace connector with real processes (Python's http.server as the workspace command).

Every test removes what it started (the ``connector`` fixture deletes every workspace it knows), so no
workspace process outlives the test run.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from django.test import override_settings

from connectors.workspaces import get_connector
from connectors.workspaces.base import (
    DataMount,
    Resources,
    TemplateSpec,
    WorkspaceConnectorError,
    WorkspaceSpec,
    WorkspaceState,
)
from connectors.workspaces.local import LocalWorkspaceConnector
from tests.workspace_processes import kill_leftovers

TEMPLATE = TemplateSpec(
    name="jupyter-cpu",
    image="kubeflownotebookswg/jupyter-scipy:v1.9.2",
    local_command=["jupyter-lab", "--port={port}"],  # not installed here: the fallback runs
    default_resources=Resources(cpu="1", memory="1Gi"),
)


def mount(name: str, password: str | None = None) -> DataMount:
    return DataMount(
        dataset_namespace="postgres://warehouse:5432",
        dataset_name=name,
        grant_id=uuid.uuid4(),
        credentials={"user": "ws_reader", "password": password or f"pw-{name}"},
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
    )


def spec(*mounts: DataMount, workspace_id: uuid.UUID | None = None, template: TemplateSpec = TEMPLATE) -> WorkspaceSpec:
    return WorkspaceSpec(id=workspace_id or uuid.uuid4(), owner="dana", template=template, mounts=list(mounts))


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "workspaces"


@pytest.fixture
def connector(state_dir: Path) -> Iterator[LocalWorkspaceConnector]:
    made = LocalWorkspaceConnector(state_dir=str(state_dir), use_installed=False, stop_timeout=5)
    yield made
    for workspace_id in list(made.list_managed()):
        made.delete(workspace_id)
    assert kill_leftovers(state_dir) == []


def test_apply_runs_a_process_that_answers_with_exactly_the_mounts_in_its_environment(connector, state_dir):
    orders, customers = mount("sales.public.orders"), mount("crm.customers")
    workspace = spec(orders, customers)

    status = connector.apply(workspace)

    assert status.state == WorkspaceState.RUNNING
    assert status.url.startswith("http://127.0.0.1:")
    assert requests.get(status.url, timeout=5).status_code == 200
    wdir = state_dir / str(workspace.id)
    pid = int((wdir / "pid").read_text())
    assert connector.pid_of(workspace.id) == pid
    env = environ(pid)
    documents = json.loads(env["STEWARD_DATASETS"])
    assert {d["dataset"]["name"]: d["credentials"]["password"] for d in documents} == {
        "sales.public.orders": "pw-sales.public.orders",
        "crm.customers": "pw-crm.customers",
    }
    assert {d["grant_id"] for d in documents} == {str(orders.grant_id), str(customers.grant_id)}
    assert env["STEWARD_WORKSPACE_ID"] == str(workspace.id)
    assert env["HOME"] == str(wdir / "home")
    # Steward's own environment (database URL, secret key) never reaches a workspace.
    assert not {"DATABASE_URL", "STEWARD_SECRET_KEY", "DJANGO_SETTINGS_MODULE"} & set(env)
    files = sorted((wdir / "credentials").iterdir())
    assert len(files) == 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert json.loads(env["STEWARD_DATASETS"])[0] in [json.loads(f.read_text()) for f in files]
    state = json.loads((wdir / "workspace.json").read_text())
    assert (state["pid"], state["url"]) == (pid, status.url)


def test_applying_the_same_spec_again_keeps_the_process(connector):
    workspace = spec(mount("sales.public.orders"))
    connector.apply(workspace)
    pid = connector.pid_of(workspace.id)

    assert connector.apply(workspace).state == WorkspaceState.RUNNING

    assert connector.pid_of(workspace.id) == pid


def test_a_mount_fewer_restarts_the_process_without_its_credentials_on_the_same_url(connector, state_dir):
    orders, customers = mount("sales.public.orders"), mount("crm.customers")
    first = connector.apply(spec(orders, customers, workspace_id=(workspace_id := uuid.uuid4())))
    old_pid = connector.pid_of(workspace_id)

    second = connector.apply(spec(customers, workspace_id=workspace_id))

    new_pid = connector.pid_of(workspace_id)
    assert new_pid != old_pid and wait_dead(old_pid)
    assert second.url == first.url and requests.get(second.url, timeout=5).status_code == 200
    assert [d["dataset"]["name"] for d in json.loads(environ(new_pid)["STEWARD_DATASETS"])] == ["crm.customers"]
    assert len(list((state_dir / str(workspace_id) / "credentials").iterdir())) == 1


def test_renewed_credentials_of_the_same_datasets_are_rewritten_without_a_restart(connector, state_dir):
    workspace_id = uuid.uuid4()
    orders = mount("sales.public.orders", password="old")
    connector.apply(spec(orders, workspace_id=workspace_id))
    pid = connector.pid_of(workspace_id)
    renewed = DataMount(**{**orders.__dict__, "credentials": {"user": "ws_reader", "password": "new"}})

    connector.apply(spec(renewed, workspace_id=workspace_id))

    assert connector.pid_of(workspace_id) == pid
    (path,) = (state_dir / str(workspace_id) / "credentials").iterdir()
    assert json.loads(path.read_text())["credentials"]["password"] == "new"


def test_stop_kills_the_process_and_removes_credentials_and_apply_starts_it_again(connector, state_dir):
    workspace = spec(mount("sales.public.orders"))
    url = connector.apply(workspace).url
    pid = connector.pid_of(workspace.id)
    (state_dir / str(workspace.id) / "home" / "notes.txt").write_text("kept")

    status = connector.stop(workspace.id)

    assert status.state == WorkspaceState.STOPPED
    assert wait_dead(pid)
    assert connector.status(workspace.id).state == WorkspaceState.STOPPED
    wdir = state_dir / str(workspace.id)
    assert not (wdir / "pid").exists() and not (wdir / "credentials").exists()
    assert (wdir / "home" / "notes.txt").read_text() == "kept"
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
    assert connector.stop(workspace.id).state == WorkspaceState.STOPPED  # again: nothing to do

    assert connector.apply(workspace).state == WorkspaceState.RUNNING
    assert requests.get(url, timeout=5).status_code == 200


def test_delete_stops_the_process_and_removes_the_directory(connector, state_dir):
    workspace = spec(mount("sales.public.orders"))
    connector.apply(workspace)
    pid = connector.pid_of(workspace.id)

    connector.delete(workspace.id)

    assert wait_dead(pid)
    assert not (state_dir / str(workspace.id)).exists()
    assert connector.status(workspace.id).state == WorkspaceState.DELETED
    assert connector.stop(workspace.id).state == WorkspaceState.DELETED
    connector.delete(workspace.id)  # again: fine


def test_a_new_connector_readopts_live_processes_and_cleans_up_dead_ones(connector, state_dir):
    live, dying = spec(mount("a.b.c")), spec(mount("d.e.f"))
    connector.apply(live)
    connector.apply(dying)
    dying_pid = connector.pid_of(dying.id)
    os.kill(dying_pid, signal.SIGKILL)
    assert wait_dead(dying_pid)

    restarted = LocalWorkspaceConnector(state_dir=str(state_dir), use_installed=False)  # Steward restarted
    managed = restarted.list_managed()

    assert managed[live.id].state == WorkspaceState.RUNNING
    assert managed[dying.id].state == WorkspaceState.FAILED
    assert "the workspace process stopped" in managed[dying.id].message
    assert not (state_dir / str(dying.id) / "pid").exists()
    assert not (state_dir / str(dying.id) / "credentials").exists()
    assert restarted.pid_of(live.id) == connector.pid_of(live.id)


def test_processes_survive_the_process_that_started_them(state_dir):
    """A real restart: another Python process starts the workspace and exits; the workspace keeps running."""
    workspace_id = uuid.uuid4()
    script = textwrap.dedent(
        f"""
        import uuid
        from connectors.workspaces.base import TemplateSpec, WorkspaceSpec
        from connectors.workspaces.local import LocalWorkspaceConnector
        c = LocalWorkspaceConnector(state_dir={str(state_dir)!r}, use_installed=False)
        t = TemplateSpec(name="jupyter-cpu", image="x")
        print(c.apply(WorkspaceSpec(id=uuid.UUID({str(workspace_id)!r}), owner="dana", template=t)).url)
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    url = done.stdout.strip().splitlines()[-1]
    adopter = LocalWorkspaceConnector(state_dir=str(state_dir), use_installed=False, stop_timeout=5)
    try:
        assert requests.get(url, timeout=5).status_code == 200
        assert adopter.list_managed()[workspace_id].state == WorkspaceState.RUNNING
        pid = adopter.pid_of(workspace_id)

        adopter.stop(workspace_id)

        assert wait_dead(pid)
    finally:
        adopter.delete(workspace_id)
        assert kill_leftovers(state_dir) == []


def test_a_reused_pid_is_neither_adopted_nor_killed(connector, state_dir):
    workspace = spec()
    connector.apply(workspace)
    connector.stop(workspace.id)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        path = state_dir / str(workspace.id) / "workspace.json"
        state = json.loads(path.read_text())
        state.update(pid=stranger.pid, pid_started="1", run=True)  # as if the old pid now belonged to it
        path.write_text(json.dumps(state))

        assert connector.status(workspace.id).state == WorkspaceState.FAILED
        connector.delete(workspace.id)

        assert stranger.poll() is None  # still running: not ours, not touched
    finally:
        stranger.kill()
        stranger.wait()


def test_a_command_that_exits_at_once_is_refused_naming_the_command(state_dir):
    failing = LocalWorkspaceConnector(
        state_dir=str(state_dir),
        use_installed=False,
        fallback_command=["{python}", "-c", "import sys; print('no notebook for you'); sys.exit(3)"],
    )
    workspace = spec(mount("sales.public.orders"))

    with pytest.raises(WorkspaceConnectorError) as caught:
        failing.apply(workspace)

    assert "exit code 3" in caught.value.message and "no notebook for you" in caught.value.message
    assert [p.field for p in caught.value.problems] == ["template.command"]
    assert failing.status(workspace.id).state == WorkspaceState.FAILED
    assert not (state_dir / str(workspace.id) / "credentials").exists()
    failing.delete(workspace.id)


def test_concurrent_applies_start_one_process(connector, state_dir):
    workspace = spec(mount("sales.public.orders"))
    results: list[str] = []

    def apply() -> None:
        results.append(connector.apply(workspace).state)

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results == [WorkspaceState.RUNNING] * 4
    pid = connector.pid_of(workspace.id)
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _marker(p) == str(workspace.id)]
    assert [int(p.name) for p in children] == [pid]


def _marker(proc: Path) -> str | None:
    try:
        for item in (proc / "environ").read_bytes().split(b"\0"):
            if item.startswith(b"STEWARD_WORKSPACE_ID="):
                return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    return None


def test_settings_select_the_local_connector_by_default(state_dir):
    options = {"state_dir": str(state_dir)}
    with override_settings(STEWARD_WORKSPACE_CONNECTOR="local", STEWARD_WORKSPACE_OPTIONS=options):
        chosen = get_connector()
        assert isinstance(chosen, LocalWorkspaceConnector)
        chosen.ping()
        assert chosen.list_managed() == {}
