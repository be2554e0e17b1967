"""The operating-system side of the local workspace connector: ports, process identity, signals, reaping, logs.

Plain functions over pids, ports and paths (no Steward state), so the connector in ``local.py`` reads as what it
does to a workspace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

__all__ = [
    "CHILDREN",
    "LOG_TAIL",
    "answers",
    "fill",
    "free_port",
    "log_tail",
    "pgid",
    "port_free",
    "reap",
    "remove_file",
    "send_signal",
    "start_time",
    "zombie_or_gone",
]

#: Characters of a workspace's log quoted when its process exits.
LOG_TAIL = 600

# Children started by this process, so their exit is reaped (no zombies) while Steward keeps running.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def fill(arg: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot on Linux; ``ps`` lstart elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    if Path("/proc").is_dir():
        return ""
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def zombie_or_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def send_signal(pid: int, sig: signal.Signals, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def reap(pid: int) -> int | None:
    """Collect a child's exit status if it is ours (no zombie left); ``None`` when unknown."""
    child = CHILDREN.pop(pid, None)
    if child is not None:
        try:
            return child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            CHILDREN[pid] = child
            return None
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def log_tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 4096))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("--- ")]
    return " | ".join(lines[-5:])[-LOG_TAIL:]
