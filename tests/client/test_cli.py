"""The ``steward`` command, run as a separate process against a live server, as a user or a script would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import transaction

from catalog.services.models import model_create, model_version_create
from lineage.models import Job
from tests.client.conftest import ROOT
from tests.lineage.events import NS, complete

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_search_and_dataset_show_for_people_and_scripts(cli, cast, make_dataset):
    orders = make_dataset(
        "sales.public.orders",
        description="Orders placed online",
        fields=[{"name": "id", "type": "int"}, {"name": "email", "type": "varchar"}],
    )
    found = cli("dana", "search", "orders", "--facets")
    assert found.code == 0, found.err
    assert "sales.public.orders" in found.out and "1 result" in found.out and "platform: postgres (1)" in found.out
    scripted = cli("dana", "--json", "search", "orders")
    assert [h["id"] for h in scripted.json()["results"]] == [str(orders.pk)]

    shown = cli("dana", "dataset", "show", str(orders.pk))
    assert shown.code == 0, shown.err
    assert f"id              {orders.pk}" in shown.out and "Orders placed online" in shown.out
    assert "email  varchar" in shown.out  # the schema as a table
    by_name = cli("dana", "--json", "dataset", "show", NS, "sales.public.orders")
    assert by_name.json()["id"] == str(orders.pk)
    listed = cli("dana", "--json", "dataset", "list", "--namespace", NS)
    assert [d["name"] for d in listed.json()] == ["sales.public.orders"]


def test_exit_codes_and_the_servers_messages(cli, cast, make_dataset):
    orders = make_dataset("sales.public.orders", classification="C2")

    missing = cli("dana", "dataset", "show", NS, "no.such.table")
    assert missing.code == 2 and missing.out == ""
    assert "404 not_found" in missing.err and "no.such.table" in missing.err, missing.err

    invalid = cli(
        "dana",
        "access",
        "request",
        str(orders.pk),
        "--purpose",
        "analytics",
        "--justification",
        "j",
        "--duration",
        "soon",
    )
    assert invalid.code == 2 and "duration" in invalid.err, invalid.err
    scripted = cli(
        "dana",
        "--json",
        "access",
        "request",
        str(orders.pk),
        "--purpose",
        "analytics",
        "--justification",
        "j",
        "--duration",
        "soon",
    )
    error = json.loads(scripted.err)
    assert (scripted.code, error["status"], error["errors"][0]["field"]) == (2, 400, "duration")

    bad_token = "stw_deadbeef_not-a-real-token"
    refused = cli(None, "whoami", token=bad_token)
    assert refused.code == 3 and "401" in refused.err and "STEWARD_TOKEN" in refused.err
    assert bad_token not in refused.out + refused.err  # the token is never printed

    assert cli(None, "whoami").code == 3  # no token at all
    forbidden = cli("dana", "reconstruct", "--result", "00000000-0000-0000-0000-000000000000")
    assert forbidden.code == 3 and "403" in forbidden.err

    unreachable = cli("dana", "whoami", env={"STEWARD_URL": "http://127.0.0.1:9"})
    assert unreachable.code == 4 and "Could not reach" in unreachable.err
    usage = cli("dana", "dataset", "show")
    assert usage.code == 1 and "usage:" in usage.err

    me = cli("dana", "whoami")
    assert me.code == 0 and me.out.startswith("dana (data-scientist)")
    assert cast.tokens["dana"] not in me.out + me.err


def test_config_file_and_its_permission_warning(cli, cast, tmp_path):
    config = tmp_path / "home" / ".config" / "steward" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'url = "{cast.url}"\n\n[profiles.steward]\nurl = "{cast.url}"\ntoken = "{cast.tokens["stella"]}"\n'
    )
    config.write_text(config.read_text().replace("\n\n", f'\ntoken = "{cast.tokens["dana"]}"\n\n', 1))
    config.chmod(0o644)
    ran = cli(None, "whoami", env={"STEWARD_URL": ""})
    assert ran.code == 0 and ran.out.startswith("dana ")
    assert "chmod 600" in ran.err  # readable by others: warned
    config.chmod(0o600)
    ran = cli(None, "--profile", "steward", "whoami", env={"STEWARD_URL": ""})
    assert ran.code == 0 and ran.out.startswith("stella ") and ran.err == ""
    assert cli("dana", "--profile", "nope", "whoami").code == 0  # the environment's token wins over the file
    unknown = cli(None, "--profile", "nope", "whoami", env={"STEWARD_URL": ""})
    assert unknown.code == 1 and "No profile 'nope'" in unknown.err


def test_access_request_approval_grants_and_a_workspace(cli, cast, make_dataset, workspace_templates, local_workspaces):
    orders = make_dataset("sales.public.orders", classification="C2")  # no owner: a data steward approves

    asked = cli(
        "dana",
        "--json",
        "access",
        "request",
        "--name",
        NS,
        "sales.public.orders",
        "--purpose",
        "analytics",
        "--justification",
        "Churn study Q3",
        "--duration",
        "P2D",
    )
    assert asked.code == 0, asked.err
    request_id = asked.json()["id"]
    listed = cli("dana", "access", "list")
    assert request_id in listed.out and "pending" in listed.out

    queue = cli("stella", "--json", "access", "list", "--awaiting-me")
    assert [r["id"] for r in queue.json()] == [request_id]
    cast.client("stella").access_request_approve(request_id, comment="fine for Q3")  # the approver, by the SDK

    grants = cli("dana", "access", "grants")
    assert grants.code == 0 and "active" in grants.out and "sales.public.orders" in grants.out
    assert "approved" in cli("dana", "access", "list").out

    created = cli(
        "dana",
        "--json",
        "workspace",
        "create",
        "--template",
        "jupyter-cpu",
        "--name",
        "churn",
        "--dataset",
        str(orders.pk),
    )
    assert created.code == 0, created.err
    workspace = created.json()
    assert workspace["name"] == "churn" and workspace["desired_state"] == "running"
    shown = cli("dana", "--json", "workspace", "show", workspace["id"]).json()
    assert shown["state"] == "running", shown["message"]
    assert [(d["name"], d["mounted"]) for d in shown["datasets"]] == [("sales.public.orders", True)]
    table = cli("dana", "workspace", "list")
    assert "churn" in table.out and "running" in table.out
    human = cli("dana", "workspace", "show", workspace["id"])
    assert f"dataset   {NS} sales.public.orders (mounted)" in human.out, human.out

    stopped = cli("dana", "workspace", "stop", workspace["id"])
    assert stopped.code == 0 and f"workspace {workspace['id']}: stop" in stopped.out, stopped.out
    assert cli("dana", "--json", "workspace", "show", workspace["id"]).json()["state"] == "stopped"
    again = cli("dana", "workspace", "stop", "00000000-0000-0000-0000-000000000000")
    assert again.code == 2 and "404" in again.err


def test_lineage_push_shows_progress_and_resumes_after_an_interruption(cli, cast, tmp_path):
    events = [complete(f"cli-{i}", ["raw.orders"], [f"mart.c{i}"]) for i in range(150)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    state = tmp_path / "events.jsonl.steward-push.json"
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "STEWARD_URL": cast.url,
        "STEWARD_TOKEN": cast.tokens["pipeline"],
    }
    running = subprocess.Popen(
        [sys.executable, "-m", "steward_client", "lineage", "push", str(path), "--batch-size", "1"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["lines"] >= 10:
            break
        time.sleep(0.01)
    running.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = running.communicate(timeout=60)
    assert running.returncode == 130, (out, err)
    assert "rerun the same command to continue" in err
    acknowledged = json.loads(state.read_text())["lines"]
    assert 10 <= acknowledged < 150

    resumed = cli("pipeline", "--json", "lineage", "push", str(path), "--batch-size", "40")
    assert resumed.code == 0, resumed.err
    summary = resumed.json()
    assert summary["resumed_at"] == acknowledged and summary["sent"] == 150 - acknowledged
    # At most the batch in flight when interrupted was stored without being recorded: it answers duplicate.
    assert summary["duplicate"] <= 1 and summary["applied"] + summary["duplicate"] == summary["sent"]
    assert f"resuming after line {acknowledged}" in resumed.err
    assert Job.objects.filter(name__startswith="cli-").count() == 150

    # On a terminal, a progress bar counts the lines (tqdm, on stderr); the summary goes to stdout.
    code, out, terminal = run_on_a_terminal(
        [sys.executable, "-m", "steward_client", "lineage", "push", str(path), "--restart", "--batch-size", "50"],
        environ,
    )
    assert code == 0 and "pushed 150 events in 3 batches: 0 applied, 150 duplicate" in out
    assert "lineage: 100%" in terminal and "150/150" in terminal, terminal

    path.write_text(json.dumps(events[0]) + "\n{not json\n")
    broken = cli("pipeline", "lineage", "push", str(path))
    assert broken.code == 1 and "line 2: not JSON" in broken.err
    bad_event = dict(events[1], eventTime="yesterday")
    path.write_text(json.dumps(events[0]) + "\n" + json.dumps(bad_event) + "\n")
    rejected = cli("pipeline", "lineage", "push", str(path), "--restart")
    assert rejected.code == 2 and "line 2 (events[1].eventTime)" in rejected.err, rejected.err
    assert cli("dana", "lineage", "push", str(path)).code == 3  # not a lineage producer


def run_on_a_terminal(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``command`` with its stderr on a pseudo-terminal (as in a shell); its exit code, stdout and terminal."""
    import fcntl
    import pty
    import struct
    import termios

    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns, as a shell's
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=terminal_fd, text=True)
    os.close(terminal_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    out = proc.stdout.read() if proc.stdout else ""
    return proc.wait(timeout=60), out, seen.decode(errors="replace")


def test_reconstruct_looks_or_keeps_a_report(cli, cast, tmp_path, data_scientist):
    with transaction.atomic():
        model = model_create(actor=data_scientist, name="churn")
        version = model_version_create(actor=data_scientist, model=model, version="1", artifact_uri="s3://m/1")
    at = datetime.now(UTC).isoformat()

    looked = cli("carl", "reconstruct", "--model-version", str(version.pk), "--at", at)
    assert looked.code == 0, looked.err
    assert "model version  1" in looked.out and "not stored" in looked.out
    assert "finding        The model version has no recorded training run" in looked.out
    kept = cli(
        "carl", "--json", "reconstruct", "--model-version", str(version.pk), "--at", at, "--keep", "-o", "report.json"
    )
    assert kept.code == 0, kept.err
    report = kept.json()
    assert report["id"] and report["digest"]["algorithm"] == "sha256"
    assert json.loads((tmp_path / "report.json").read_text())["id"] == report["id"]
    assert [r.id for r in cast.client("carl").reports()] == [report["id"]]

    unknown = cli("carl", "reconstruct", "--model-version", "00000000-0000-0000-0000-000000000000", "--at", at)
    assert unknown.code == 2 and "404" in unknown.err
    bad_time = cli("carl", "reconstruct", "--model-version", str(version.pk), "--at", "noon")
    assert bad_time.code == 2 and "at" in bad_time.err
    assert cli("carl", "reconstruct").code == 1  # neither a result nor a model version: usage


def test_the_client_installs_alone_in_a_fresh_virtualenv_without_django(cast, tmp_path):
    """``pip install ./steward_client`` in a clean venv: the package, its ``steward`` command and no Django."""
    import shutil

    source = tmp_path / "steward_client"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "steward_client", source, ignore=shutil.ignore_patterns("__pycache__", "build"))
    venv = tmp_path / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import importlib.util, sys, steward_client;"
        "assert importlib.util.find_spec('django') is None, 'django is installed';"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'steward')];"
        "print(steward_client.__version__, steward_client.__file__)"
    )
    # -I: isolated, neither PYTHONPATH nor the working directory (this repository) on the path.
    imported = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", probe], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert str(venv) in imported.stdout  # the installed copy, not the repository's
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STEWARD_URL": cast.url,
        "STEWARD_TOKEN": cast.tokens["dana"],
    }
    whoami = subprocess.run([str(venv / "bin" / "steward"), "whoami"], env=env, capture_output=True, text=True)
    assert whoami.returncode == 0 and whoami.stdout.startswith("dana "), whoami.stderr
