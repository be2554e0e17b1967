"""The ``local`` workspace connector: one real process per workspace on this host (the embedded default).

The process is JupyterLab (or whatever the template's ``local_command`` names) when that program is
installed, else ``fallback_command`` (by default Python's ``http.server`` serving the workspace's home
directory, so a workspace always has something that answers at its URL). It listens on ``host`` (loopback)
at a free port chosen at its first start and kept afterwards, so its URL does not change.

Everything about a workspace lives in ``<state_dir>/<workspace id>/``:

- ``workspace.json``: what the connector knows (port, URL, command line, pid and the pid's start time, the
  mounted datasets' fingerprint, whether it should run);
- ``pid``: the process id while it runs;
- ``home/``: its working and home directory, kept when stopped, removed by ``delete``; Steward keeps a
  ``README.md`` and a ``datasets.json`` in it describing the mounted datasets and where their credentials are;
- ``credentials/``: one JSON file per mounted dataset (mode 0600; also in the process's environment);
- ``workspace.log``: the process's output;
- ``.lock``: serialises every operation on the workspace (``flock``), so two reconcilers never start two
  processes for one workspace.

**Credentials.** The process gets a minimal environment (never Steward's own, which holds its database URL
and secret key): ``PATH``, ``LANG``, ``HOME`` (its home), ``STEWARD_WORKSPACE_ID``,
``STEWARD_CREDENTIALS_DIR`` and ``STEWARD_DATASETS``, a JSON list with one document per mounted dataset
(dataset, grant id, ``valid_until``, credentials). An environment cannot change under a running process,
so when the *set* of mounted datasets changes (a grant expired or was revoked) ``apply`` restarts the
process without the dropped dataset. When only the credentials of the same datasets change (a renewed
token) the files in ``credentials/`` are rewritten in place and the process keeps running: read the files
for the freshest credentials.

**Processes survive Steward.** Each process is started in its own session (``start_new_session``), so
stopping or restarting the web server or the Celery worker leaves workspaces running. ``list_managed``
(and every other call) re-adopts a live process after checking that its pid still belongs to it: the
kernel's start time of the pid must match the one recorded at start, and its environment must carry
``STEWARD_WORKSPACE_ID=<id>`` (Linux ``/proc``; elsewhere only the start time through ``ps``). A process
that died is cleaned up: its pid file and credential files are removed and the workspace reports
``failed`` with the end of its log. Processes are stopped by their recorded pid (SIGTERM to the process
group the connector created, SIGKILL after ``stop_timeout``), never by name.

Not enforced locally: cpu, memory and gpu (a development convenience, not an isolation boundary).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from connectors.workspaces.base import (
    WorkspaceConnectorError,
    WorkspaceSpec,
    WorkspaceState,
    WorkspaceStatus,
)
from connectors.workspaces.kubernetes_manifests import credential_key
from connectors.workspaces.local_processes import (
    CHILDREN,
    answers,
    fill,
    free_port,
    log_tail,
    pgid,
    port_free,
    reap,
    remove_file,
    send_signal,
    start_time,
    zombie_or_gone,
)
from steward.canonical import digest
from steward.errors import BackendUnavailable, FieldProblem

__all__ = ["DEFAULT_FALLBACK_COMMAND", "LocalWorkspaceConnector"]

logger = logging.getLogger(__name__)

#: Serves the workspace's home directory: something that answers at the URL when no notebook is installed.
DEFAULT_FALLBACK_COMMAND = ["{python}", "-m", "http.server", "{port}", "--bind", "{host}", "--directory", "{home}"]
_ENV_MARKER = "STEWARD_WORKSPACE_ID"


@dataclass
class _State:
    """``workspace.json``: what the connector recorded about one workspace."""

    id: str
    owner: str = ""
    template: str = ""
    port: int = 0
    url: str = ""
    argv: list[str] = field(default_factory=list)
    program: str = ""
    fingerprint: str = ""
    run: bool = False
    pid: int | None = None
    pid_started: str = ""
    started_at: float | None = None
    exit: str = ""

    @classmethod
    def load(cls, path: Path) -> _State | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            raw = {"id": path.parent.name, "exit": "workspace.json was unreadable"}
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class LocalWorkspaceConnector:
    """Workspaces as local processes (``STEWARD_WORKSPACE_CONNECTOR=local``); see the module docstring.

    ``use_installed`` ``False`` always runs ``fallback_command`` (tests, or hosts where JupyterLab should not
    start). ``start_timeout``: seconds ``apply`` waits for the port to answer before reporting
    ``provisioning``; ``stop_timeout``: seconds between SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        *,
        state_dir: str,
        host: str = "127.0.0.1",
        fallback_command: list[str] | None = None,
        use_installed: bool = True,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if not state_dir:
            raise ValueError("state_dir is required (settings: STEWARD_STATE_DIR/workspaces)")
        self.state_dir = Path(state_dir)
        self.host = host
        self.fallback_command = list(fallback_command or DEFAULT_FALLBACK_COMMAND)
        self.use_installed = use_installed
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout

    # --- protocol -----------------------------------------------------------------------------------
    def apply(self, spec: WorkspaceSpec) -> WorkspaceStatus:
        """Start the workspace's process (or keep it), with exactly ``spec.mounts`` in its environment."""
        with self._locked(spec.id) as wdir:
            state = self._load(wdir) or _State(id=str(spec.id))
            alive = self._alive(wdir, state)
            home = wdir / "home"
            home.mkdir(mode=0o700, exist_ok=True)
            token = self._token(wdir)
            if not state.port or (not alive and not port_free(self.host, state.port)):
                state.port = free_port(self.host)
            argv, program, url_path = self._command(spec, state.port, home, token)
            documents = {
                credential_key(m.dataset_namespace, m.dataset_name): m.document()
                for m in sorted(spec.mounts, key=lambda m: (m.dataset_namespace, m.dataset_name))
            }
            fingerprint = digest([argv, sorted((k, d["grant_id"]) for k, d in documents.items())])
            self._write_credentials(wdir, documents)
            _write_home_guide(home, wdir / "credentials", documents)
            state.owner, state.template, state.run = spec.owner, spec.template.name, True
            state.url = f"http://{self.host}:{state.port}{url_path}"
            if alive and state.fingerprint == fingerprint:
                self._save(wdir, state)
                return self._observe(wdir, state)
            if alive:
                logger.info("restarting workspace process (mounts changed)", extra={"workspace": state.id})
                self._terminate(wdir, state)
            state.argv, state.program, state.fingerprint, state.exit = argv, program, fingerprint, ""
            self._start(wdir, state, documents)
            return self._wait_ready(wdir, state)

    def stop(self, workspace_id: UUID) -> WorkspaceStatus:
        """Stop the process (SIGTERM, then SIGKILL) and remove its credential files; the home stays."""
        with self._locked(workspace_id, create=False) as wdir:
            if wdir is None:
                return WorkspaceStatus(WorkspaceState.DELETED, message="no local workspace with this id")
            state = self._load(wdir) or _State(id=str(workspace_id))
            if self._alive(wdir, state):
                self._terminate(wdir, state)
            state.run, state.pid, state.pid_started = False, None, ""
            remove_file(wdir / "pid")
            shutil.rmtree(wdir / "credentials", ignore_errors=True)
            if (wdir / "home").is_dir():
                _write_home_guide(wdir / "home", wdir / "credentials", {})
            self._save(wdir, state)
            return WorkspaceStatus(WorkspaceState.STOPPED, state.url)

    def delete(self, workspace_id: UUID) -> None:
        """Stop the process and remove the workspace's directory (home, credentials, log)."""
        with self._locked(workspace_id, create=False) as wdir:
            if wdir is None:
                return
            state = self._load(wdir)
            if state is not None and self._alive(wdir, state):
                self._terminate(wdir, state)
            shutil.rmtree(wdir, ignore_errors=True)
        logger.info("local workspace deleted", extra={"workspace": str(workspace_id)})

    def status(self, workspace_id: UUID) -> WorkspaceStatus:
        with self._locked(workspace_id, create=False) as wdir:
            if wdir is None:
                return WorkspaceStatus(WorkspaceState.DELETED, message="no local workspace with this id")
            state = self._load(wdir) or _State(id=str(workspace_id))
            return self._observe(wdir, state)

    def list_managed(self) -> dict[UUID, WorkspaceStatus]:
        """Every workspace directory: live processes re-adopted, dead ones cleaned up (see the docstring)."""
        found: dict[UUID, WorkspaceStatus] = {}
        if not self.state_dir.is_dir():
            return found
        for child in sorted(self.state_dir.iterdir()):
            try:
                workspace_id = UUID(child.name)
            except ValueError:
                continue
            if child.is_dir():
                found[workspace_id] = self.status(workspace_id)
        return found

    def ping(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / f".ping-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise BackendUnavailable(f"local workspace directory {self.state_dir} is not writable: {exc}") from exc

    def pid_of(self, workspace_id: UUID) -> int | None:
        """The pid of the workspace's live process, if it runs (for operators and tests)."""
        with self._locked(workspace_id, create=False) as wdir:
            if wdir is None:
                return None
            state = self._load(wdir)
            return state.pid if state is not None and self._alive(wdir, state) else None

    # --- processes ----------------------------------------------------------------------------------
    def _command(self, spec: WorkspaceSpec, port: int, home: Path, token: str) -> tuple[list[str], str, str]:
        """(argv, program description, URL path): the template's local command if installed, else the fallback."""
        values = {"host": self.host, "port": str(port), "home": str(home), "token": token, "python": sys.executable}
        local = spec.template.local_command
        if self.use_installed and local:
            program = shutil.which(local[0])
            if program:
                argv = [program, *(fill(a, values) for a in local[1:])]
                is_jupyter = Path(local[0]).name.startswith("jupyter")
                return argv, Path(local[0]).name, f"/lab?token={token}" if is_jupyter else "/"
        argv = [fill(a, values) for a in self.fallback_command]
        resolved = shutil.which(argv[0]) if argv and not os.path.isabs(argv[0]) else argv[0]
        if not resolved:
            raise WorkspaceConnectorError(
                f"the local fallback command {argv[0]!r} is not installed",
                problems=[FieldProblem("template.command", f"{argv[0]!r} is not on PATH", "not_installed")],
            )
        return [resolved, *argv[1:]], "fallback", "/"

    def _start(self, wdir: Path, state: _State, documents: dict[str, dict[str, Any]]) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(wdir / "home"),
            _ENV_MARKER: state.id,
            "STEWARD_CREDENTIALS_DIR": str(wdir / "credentials"),
            "STEWARD_DATASETS": json.dumps(list(documents.values()), sort_keys=True, separators=(",", ":")),
        }
        with (wdir / "workspace.log").open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {state.program} on {state.url}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    state.argv,
                    cwd=wdir / "home",
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: outlives Steward, stopped as a group
                    close_fds=True,
                )
            except OSError as exc:
                raise WorkspaceConnectorError(
                    f"could not start {state.argv[0]}: {exc}",
                    problems=[FieldProblem("template.command", str(exc), "not_started")],
                ) from exc
        state.pid, state.pid_started, state.started_at = process.pid, start_time(process.pid), time.time()
        (wdir / "pid").write_text(f"{process.pid}\n")
        self._save(wdir, state)
        # Keep the Popen object: it reaps the child if it exits while this process still runs.
        CHILDREN[process.pid] = process
        logger.info("workspace process started", extra={"workspace": state.id, "pid": process.pid})

    def _wait_ready(self, wdir: Path, state: _State) -> WorkspaceStatus:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self._alive(wdir, state):
                message = f"the workspace process exited at start: {state.exit}"
                raise WorkspaceConnectorError(
                    message, problems=[FieldProblem("template.command", message, "exited")], target_status=None
                )
            if answers(self.host, state.port):
                return WorkspaceStatus(WorkspaceState.RUNNING, state.url)
            if time.monotonic() >= deadline:
                return WorkspaceStatus(WorkspaceState.PROVISIONING, state.url, f"{state.program} is starting")
            time.sleep(0.05)

    def _terminate(self, wdir: Path, state: _State) -> None:
        """SIGTERM the process's group, wait, then SIGKILL; only after checking the pid is still ours."""
        pid = state.pid
        if pid is None:
            return
        group = pgid(pid) == pid  # it leads the session it was started in
        send_signal(pid, signal.SIGTERM, group)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and self._pid_is_ours(state):
            time.sleep(0.05)
        if self._pid_is_ours(state):
            send_signal(pid, signal.SIGKILL, group)
            for _ in range(100):
                if not self._pid_is_ours(state):
                    break
                time.sleep(0.02)
        reap(pid)
        state.pid, state.pid_started = None, ""
        remove_file(wdir / "pid")
        self._save(wdir, state)
        logger.info("workspace process stopped", extra={"workspace": state.id, "pid": pid})

    def _alive(self, wdir: Path, state: _State) -> bool:
        """Whether the recorded pid is still this workspace's process; cleans up after a dead one."""
        if state.pid is None:
            return False
        if self._pid_is_ours(state):
            return True
        code = reap(state.pid)
        tail = log_tail(wdir / "workspace.log")
        state.exit = (f"exit code {code}" if code is not None else "the process is gone") + (
            f"; last output: {tail}" if tail else ""
        )
        state.pid, state.pid_started = None, ""
        remove_file(wdir / "pid")
        shutil.rmtree(wdir / "credentials", ignore_errors=True)
        self._save(wdir, state)
        logger.warning("workspace process found dead", extra={"workspace": state.id})
        return False

    @staticmethod
    def _pid_is_ours(state: _State) -> bool:
        pid = state.pid
        if pid is None or zombie_or_gone(pid):
            return False
        if start_time(pid) != state.pid_started:
            return False  # the pid was reused by another process
        environ = Path(f"/proc/{pid}/environ")
        if environ.parent.is_dir():
            try:
                entries = environ.read_bytes().split(b"\0")
            except OSError:
                return False
            # Empty while the kernel is still setting up a freshly exec'd process: the start time decides.
            return entries == [b""] or f"{_ENV_MARKER}={state.id}".encode() in entries
        return True

    def _observe(self, wdir: Path, state: _State) -> WorkspaceStatus:
        if self._alive(wdir, state):
            if answers(self.host, state.port):
                return WorkspaceStatus(WorkspaceState.RUNNING, state.url)
            return WorkspaceStatus(WorkspaceState.PROVISIONING, state.url, f"{state.program} is starting")
        if state.run:
            return WorkspaceStatus(WorkspaceState.FAILED, state.url, f"the workspace process stopped: {state.exit}")
        return WorkspaceStatus(WorkspaceState.STOPPED, state.url)

    # --- files --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, workspace_id: UUID, *, create: bool = True) -> Iterator[Any]:
        wdir = self.state_dir / str(UUID(str(workspace_id)))
        while True:
            if not wdir.is_dir():
                if not create:
                    yield None
                    return
                try:
                    wdir.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise BackendUnavailable(f"cannot create {wdir}: {exc}") from exc
            try:
                lock = open(wdir / ".lock", "a+b")  # held for the whole block
            except FileNotFoundError:
                continue  # deleted between the check and the open
            with lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if not wdir.is_dir() and create:
                        continue  # deleted while we waited for the lock: start over with a fresh directory
                    yield wdir if wdir.is_dir() else None
                    return
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _load(wdir: Path) -> _State | None:
        return _State.load(wdir / "workspace.json")

    @staticmethod
    def _save(wdir: Path, state: _State) -> None:
        if not wdir.is_dir():
            return
        tmp = wdir / "workspace.json.tmp"
        tmp.write_text(json.dumps(asdict(state), indent=1, sort_keys=True))
        tmp.replace(wdir / "workspace.json")

    @staticmethod
    def _token(wdir: Path) -> str:
        """The notebook server's access token (JupyterLab), made once per workspace; never logged."""
        path = wdir / "token"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    @staticmethod
    def _write_credentials(wdir: Path, documents: dict[str, dict[str, Any]]) -> None:
        """One 0600 file per mounted dataset; files of datasets no longer mounted are removed."""
        cdir = wdir / "credentials"
        cdir.mkdir(mode=0o700, exist_ok=True)
        for key, document in documents.items():
            body = json.dumps(document, sort_keys=True, indent=1)
            target = cdir / key
            if target.exists() and target.read_text() == body:
                continue
            tmp = cdir / f".{key}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(body)
            tmp.replace(target)
        for stale in cdir.iterdir():
            if stale.name not in documents:
                remove_file(stale)


HOME_README = """# Datasets in this workspace

Steward mounted the datasets listed in `datasets.json` (next to this file), each under a grant of its own.
For each one, `datasets.json` names the dataset, the grant, when the grant ends (`valid_until`) and the
file holding its credentials (`credentials_file`, readable only by you). Read the file each time you
connect: credentials are renewed in place, and a dataset whose grant ends or is revoked disappears from
this list (and its file) while the workspace restarts without it.

In Python:

    import json, pathlib
    for d in json.loads(pathlib.Path("datasets.json").read_text())["datasets"]:
        creds = json.loads(pathlib.Path(d["credentials_file"]).read_text())["credentials"]
        print(d["dataset"]["name"], d["valid_until"], sorted(creds))

The same documents, credentials included, are in the environment variable `STEWARD_DATASETS` (as they were
when the process started) and in the directory `$STEWARD_CREDENTIALS_DIR`.
"""


def _write_home_guide(home: Path, cdir: Path, documents: dict[str, dict[str, Any]]) -> None:
    """``README.md`` and ``datasets.json`` in the home: which datasets are mounted and how to read them
    (never the credentials themselves, which stay in the 0600 files)."""
    listing = {
        "datasets": [
            {
                "dataset": d["dataset"],
                "grant_id": d["grant_id"],
                "valid_until": d["valid_until"],
                "credentials_file": str(cdir / key),
            }
            for key, d in documents.items()
        ]
    }
    for name, body in (("datasets.json", json.dumps(listing, indent=1, sort_keys=True)), ("README.md", HOME_README)):
        target = home / name
        if target.exists() and target.read_text() == body:
            continue
        tmp = home / f".{name}.tmp"
        tmp.write_text(body)
        tmp.replace(target)
