"""End to end on the local connector: the API, the reconciler (run after commit, as Celery eager tasks), real
processes. Grant revocation and expiry reach the process's environment; stop, start, delete, re-adoption."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
import requests
from django.utils import timezone

from connectors.workspaces import get_connector
from governance.models import Grant
from governance.services.signing import jwks
from governance.token_verification import verify_token
from steward.backends import reset_backends
from workspaces.models import Workspace, WorkspaceEvent
from workspaces.services import workspace_reconcile, workspaces_due, workspaces_reconcile_due, workspaces_reconcile_many

URL = "/api/v1/workspaces"

pytestmark = pytest.mark.usefixtures("local_connector")


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def mounted(workspace_id: str) -> dict[str, dict]:
    """The dataset documents in the workspace process's environment, by dataset name."""
    pid = get_connector().pid_of(UUID(workspace_id))
    assert pid is not None, "no process"
    return {d["dataset"]["name"]: d for d in json.loads(environ(pid)["STEWARD_DATASETS"])}


def wait_dead(pid: int) -> bool:
    for _ in range(200):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def datasets(make_dataset):
    return make_dataset("sales.public.orders"), make_dataset("crm.public.customers")


@pytest.fixture
def running(call, data_scientist, grant, datasets):
    """dana's workspace with both datasets, reconciled to running; returns (API body, dana's grants by name)."""
    mine = {g.dataset.name: g for g in grant(data_scientist, *datasets)}
    res = call(data_scientist, "post", URL, {"template": "jupyter-cpu", "datasets": [str(d.pk) for d in datasets]})
    assert res.status_code == 201, res.content
    return call(data_scientist, "get", f"{URL}/{res.json()['id']}").json(), mine


def test_create_runs_a_process_with_exactly_the_granted_credentials(running, data_scientist):
    body, _ = running

    assert body["state"] == "running"
    assert requests.get(body["url"], timeout=5).status_code == 200
    assert [(e["from_state"], e["to_state"]) for e in reversed(body["events"]) if e["kind"] == "transition"] == [
        ("requested", "provisioning"),
        ("provisioning", "running"),
    ]
    assert all(d["mounted"] for d in body["datasets"])
    documents = mounted(body["id"])
    own = {g.dataset.name: g for g in Grant.objects.filter(workspace_id=body["id"])}
    assert set(documents) == set(own) == {"sales.public.orders", "crm.public.customers"}
    keys = jwks()
    for name, document in documents.items():
        assert document["grant_id"] == str(own[name].pk)
        claims = verify_token(document["credentials"]["token"], keys)
        assert (claims["sub"], claims["grant_id"]) == (f"workspace:{body['id']}", str(own[name].pk))


def test_the_home_describes_the_mounted_datasets_without_their_secrets(running, call, data_scientist, local_connector):
    body, mine = running
    home = local_connector / body["id"] / "home"
    listing = json.loads((home / "datasets.json").read_text())["datasets"]
    assert {d["dataset"]["name"] for d in listing} == {"sales.public.orders", "crm.public.customers"}
    assert "datasets.json" in (home / "README.md").read_text()
    for entry in listing:
        assert "credentials" not in entry
        assert json.loads(Path(entry["credentials_file"]).read_text())["grant_id"] == entry["grant_id"]
    page = requests.get(body["url"], timeout=5).text
    assert "README.md" in page and "datasets.json" in page, "the workspace's URL lists the guide, not an empty home"

    call(data_scientist, "post", f"/api/v1/grants/{mine['crm.public.customers'].pk}/revoke", {"reason": "done"})
    listing = json.loads((home / "datasets.json").read_text())["datasets"]
    assert [d["dataset"]["name"] for d in listing] == ["sales.public.orders"]


def test_revoking_the_owners_grant_removes_its_credentials_from_the_process(running, call, data_scientist):
    body, mine = running
    old_pid = get_connector().pid_of(UUID(body["id"]))

    res = call(data_scientist, "post", f"/api/v1/grants/{mine['crm.public.customers'].pk}/revoke", {"reason": "done"})

    assert res.status_code == 200
    assert set(mounted(body["id"])) == {"sales.public.orders"}
    assert wait_dead(old_pid)  # the environment cannot change: the process was restarted without it
    own = Grant.objects.get(workspace_id=body["id"], dataset__name="crm.public.customers")
    assert own.revoked_at is not None and "was revoked" in own.revoke_reason
    after = call(data_scientist, "get", f"{URL}/{body['id']}").json()
    assert after["state"] == "running" and after["url"] == body["url"]
    assert {d["name"]: d["mounted"] for d in after["datasets"]} == {
        "sales.public.orders": True,
        "crm.public.customers": False,
    }
    assert "is revoked" in next(d for d in after["datasets"] if not d["mounted"])["unmounted_reason"]
    latest = after["events"][0]
    assert latest["kind"] == "mounts" and "removed postgres://warehouse:5432/crm.public.customers" in latest["message"]


def test_expiry_removes_a_dataset_within_one_periodic_pass(running, data_scientist):
    body, mine = running
    Grant.objects.filter(pk=mine["crm.public.customers"].pk).update(valid_until=timezone.now() + timedelta(minutes=5))
    Grant.objects.filter(workspace_id=body["id"], dataset__name="crm.public.customers").update(
        valid_until=timezone.now() + timedelta(minutes=5)
    )
    later = timezone.now() + timedelta(minutes=6)

    nothing = workspaces_reconcile_due(dispatch=lambda pk: pytest.fail("nothing is due now"))
    report = workspaces_reconcile_due(now=later, dispatch=lambda pk: workspace_reconcile(workspace_id=pk, now=later))

    assert (nothing.due, report.due) == (0, 1)
    assert set(mounted(body["id"])) == {"sales.public.orders"}
    link = Workspace.objects.get(pk=body["id"]).datasets.get(dataset__name="crm.public.customers")
    assert not link.mounted and "expired" in link.unmounted_reason


def test_when_no_granted_dataset_remains_the_workspace_is_stopped(running, data_scientist):
    body, mine = running
    pid = get_connector().pid_of(UUID(body["id"]))
    later = max(g.valid_until for g in mine.values()) + timedelta(seconds=1)

    workspace_reconcile(workspace_id=UUID(body["id"]), now=later)

    workspace = Workspace.objects.get(pk=body["id"])
    assert (workspace.desired_state, workspace.state) == ("stopped", "stopped")
    assert wait_dead(pid) and get_connector().pid_of(workspace.pk) is None
    messages = list(WorkspaceEvent.objects.filter(workspace=workspace).values_list("message", flat=True))
    assert any(m.startswith("stopped by Steward: no dataset grant remains") for m in messages)
    assert not workspace.datasets.filter(mounted=True).exists()


def test_stop_start_delete_drive_the_process(running, call, data_scientist, local_connector):
    body, _ = running
    url = f"{URL}/{body['id']}"
    pid = get_connector().pid_of(UUID(body["id"]))

    call(data_scientist, "post", f"{url}/stop")  # answers at once; the reconcile runs after commit
    stopped = call(data_scientist, "get", url)
    assert stopped.json()["state"] == "stopped" and wait_dead(pid)
    assert [(e["from_state"], e["to_state"]) for e in stopped.json()["events"][:2]] == [
        ("stopping", "stopped"),
        ("running", "stopping"),
    ]

    call(data_scientist, "post", f"{url}/start")
    started = call(data_scientist, "get", url)
    assert started.json()["state"] == "running"
    assert requests.get(started.json()["url"], timeout=5).status_code == 200
    assert set(mounted(body["id"])) == {"sales.public.orders", "crm.public.customers"}
    new_pid = get_connector().pid_of(UUID(body["id"]))

    assert call(data_scientist, "delete", url).status_code == 202
    deleted = call(data_scientist, "get", url)
    assert deleted.json()["state"] == "deleted" and wait_dead(new_pid)
    assert not (local_connector / body["id"]).exists()
    assert all(g.revoked_at is not None for g in Grant.objects.filter(workspace_id=body["id"]))
    assert call(data_scientist, "get", URL).json()["results"] == []
    assert [w["id"] for w in call(data_scientist, "get", f"{URL}?state=deleted").json()["results"]] == [body["id"]]


def test_reconciling_again_changes_nothing_and_duplicates_nothing(running, data_scientist):
    body, _ = running
    pid = get_connector().pid_of(UUID(body["id"]))
    events = WorkspaceEvent.objects.filter(workspace_id=body["id"]).count()

    for _ in range(3):
        workspace_reconcile(workspace_id=UUID(body["id"]))
    report = workspaces_reconcile_due()

    assert report.due == 0
    assert get_connector().pid_of(UUID(body["id"])) == pid
    assert WorkspaceEvent.objects.filter(workspace_id=body["id"]).count() == events


def test_after_a_restart_live_processes_are_adopted_and_dead_ones_reported(running, call, data_scientist):
    body, _ = running
    pid = get_connector().pid_of(UUID(body["id"]))
    reset_backends()  # a new connector instance, as after a restart of Steward

    assert workspaces_reconcile_due().due == 0
    assert get_connector().pid_of(UUID(body["id"])) == pid

    os.kill(pid, signal.SIGKILL)
    assert wait_dead(pid)
    reset_backends()
    report = workspaces_reconcile_due(dispatch=lambda pk: workspace_reconcile(workspace_id=pk))

    assert report.due == 1
    after = call(data_scientist, "get", f"{URL}/{body['id']}").json()
    assert after["state"] == "failed" and "the workspace process stopped" in after["message"]
    assert workspaces_reconcile_due().due == 0  # a failure is not retried until the owner asks
    call(data_scientist, "post", f"{URL}/{body['id']}/start")
    assert call(data_scientist, "get", f"{URL}/{body['id']}").json()["state"] == "running"


def test_the_periodic_pass_removes_workspaces_steward_does_not_know(running, local_connector):
    body, _ = running
    Workspace.objects.filter(pk=body["id"]).delete()  # e.g. its owner's account was deleted

    report = workspaces_reconcile_due()

    assert report.orphans_removed == 1
    assert not (local_connector / body["id"]).exists()


def test_the_periodic_pass_reconciles_a_batch_as_one_workspace_at_a_time_does(
    client_for, data_scientist, grant, datasets
):
    mine = {g.dataset.name: g for g in grant(data_scientist, *datasets)}
    client = client_for(data_scientist)  # no after-commit reconcile: the periodic pass finds them requested
    body = {"template": "jupyter-cpu", "datasets": [str(d.pk) for d in datasets]}
    ids = [client.post(URL, body, format="json").json()["id"] for _ in range(2)]
    assert set(Workspace.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"requested"}

    report = workspaces_reconcile_due()  # one batch task (eager here): workspaces_reconcile_many

    assert report.due == 2
    for workspace_id in ids:
        shown = client.get(f"{URL}/{workspace_id}").json()
        assert shown["state"] == "running"
        transitions = [(e["from_state"], e["to_state"]) for e in reversed(shown["events"]) if e["kind"] == "transition"]
        assert transitions == [("requested", "provisioning"), ("provisioning", "running")]
        assert [e["kind"] for e in shown["events"]].count("mounts") == 1
        assert set(mounted(workspace_id)) == {"sales.public.orders", "crm.public.customers"}
    assert Workspace.objects.filter(pk__in=ids, lease_holder="").count() == 2  # claims released

    Grant.objects.filter(pk=mine["crm.public.customers"].pk).update(valid_until=timezone.now() + timedelta(minutes=5))
    later = timezone.now() + timedelta(minutes=6)
    due, _ = workspaces_due(now=later, observed=get_connector().list_managed())
    assert set(due) == {UUID(i) for i in ids}

    states = workspaces_reconcile_many(workspace_ids=due, now=later)

    assert set(states.values()) == {"running"}
    for workspace_id in ids:
        assert set(mounted(workspace_id)) == {"sales.public.orders"}
        link = Workspace.objects.get(pk=workspace_id).datasets.get(dataset__name="crm.public.customers")
        assert not link.mounted and "expired" in link.unmounted_reason
