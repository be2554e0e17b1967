"""A safety net for tests that start local workspace processes: kill any left under a state directory."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_leftovers(state_dir: Path) -> list[int]:
    """Kill (SIGKILL) processes whose environment points into ``state_dir``; returns their pids.

    Only processes the local connector started carry ``STEWARD_CREDENTIALS_DIR=<state_dir>/<id>/credentials``.
    """
    prefix = f"STEWARD_CREDENTIALS_DIR={state_dir}/".encode()
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            entries = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(prefix) for e in entries):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed
