"""Push a JSON Lines file of OpenLineage events in batches, resumably.

After each batch the server acknowledged, a state file (by default ``<file>.steward-push.json`` beside it)
records how many lines and bytes of the file are acknowledged, with a SHA-256 of those bytes. A rerun checks
that the file still starts with them and continues after them; if the file changed, it starts over. Either
way nothing is stored twice: the server deduplicates events, and a batch sent again (one whose answer was lost)
answers ``duplicate``. A file that grows (an append-only log) can be pushed again to send only the new lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward_client.client import MAX_BATCH, StewardClient
from steward_client.errors import StewardError, ValidationError

__all__ = ["PushError", "PushState", "PushSummary", "count_lines", "push_jsonl", "state_path_for"]

STATE_VERSION = 1


class PushError(Exception):
    """The file cannot be pushed as it is: a line is not a JSON object, or the server rejected an event of it.
    ``line`` is the 1-based line number; ``cause`` the server's error, if it was one."""

    def __init__(self, message: str, *, line: int | None = None, cause: StewardError | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.cause = cause


@dataclass
class PushState:
    """What the server acknowledged: the first ``lines`` lines (``offset`` bytes, whose SHA-256 is ``digest``)."""

    path: str
    lines: int = 0
    offset: int = 0
    digest: str = hashlib.sha256(b"").hexdigest()

    def save(self, where: Path) -> None:
        tmp = where.with_name(where.name + ".tmp")
        data = {"version": STATE_VERSION, "file": self.path, "lines": self.lines, "offset": self.offset}
        tmp.write_text(json.dumps({**data, "sha256": self.digest}) + "\n")
        os.replace(tmp, where)

    @classmethod
    def load(cls, where: Path, path: str) -> PushState | None:
        try:
            data = json.loads(where.read_text())
            return cls(path, int(data["lines"]), int(data["offset"]), str(data["sha256"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass
class PushSummary:
    file: str
    state_file: str
    total_lines: int = 0
    resumed_at: int = 0  # lines acknowledged by an earlier run and not sent again
    restarted: bool = False  # the file changed since the state was written: pushed from the start
    sent: int = 0
    applied: int = 0
    duplicate: int = 0
    batches: int = 0
    acknowledged: int = 0  # lines acknowledged, in all runs
    statuses: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def state_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".steward-push.json")


def count_lines(path: Path) -> int:
    count = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def _prefix_digest(path: Path, length: int) -> str | None:
    """SHA-256 of the file's first ``length`` bytes; ``None`` when it is shorter."""
    digest = hashlib.sha256()
    remaining = length
    with path.open("rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                return None
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def push_jsonl(
    client: StewardClient,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 500,
    state_file: str | os.PathLike[str] | None = None,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[PushSummary], None] | None = None,
) -> PushSummary:
    """Send the events of a JSON Lines file (one OpenLineage event per line; blank lines skipped) in batches.

    ``progress(n)`` is called with the number of lines each acknowledged batch covers; ``on_start(summary)``
    once the resume point is known (``summary.resumed_at``, ``summary.total_lines``). Raises ``PushError`` for
    a line that is not a JSON object or an event the server rejects (naming its line; the lines before its
    batch stay acknowledged), and ``StewardError`` when the server cannot be reached or refuses the token.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}.")
    source = Path(path)
    where = Path(state_file) if state_file else state_path_for(source)
    state = PushState(str(source.resolve()))
    summary = PushSummary(file=str(source), state_file=str(where), total_lines=count_lines(source))
    if not restart and (saved := PushState.load(where, state.path)) is not None:
        if _prefix_digest(source, saved.offset) == saved.digest:
            state = saved
        else:
            summary.restarted = True
    summary.resumed_at = state.lines
    summary.acknowledged = state.lines
    if on_start:
        on_start(summary)

    hasher = hashlib.sha256()
    with source.open("rb") as handle:
        if state.offset:
            hasher.update(handle.read(state.offset))
        line_no = state.lines
        offset = state.offset
        batch: list[dict[str, Any]] = []
        batch_lines: list[int] = []  # the line number of each event in the batch
        pending = b""  # the bytes of the lines read since the last acknowledged batch

        def flush() -> None:
            nonlocal pending
            if batch:
                _send(client, batch, batch_lines, summary)
            hasher.update(pending)
            pending = b""
            acknowledged = line_no - state.lines
            state.lines, state.offset, state.digest = line_no, offset, hasher.copy().hexdigest()
            state.save(where)
            summary.acknowledged = state.lines
            if progress and acknowledged:
                progress(acknowledged)
            batch.clear()
            batch_lines.clear()

        for raw in handle:
            line_no += 1
            offset += len(raw)
            pending += raw
            text = raw.strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PushError(f"line {line_no}: not JSON ({exc.msg}).", line=line_no) from None
            except UnicodeDecodeError:
                raise PushError(f"line {line_no}: not UTF-8 text.", line=line_no) from None
            if not isinstance(event, dict):
                raise PushError(f"line {line_no}: not a JSON object (an OpenLineage event).", line=line_no)
            batch.append(event)
            batch_lines.append(line_no)
            if len(batch) == batch_size:
                flush()
        if batch or pending:
            flush()
    return summary


def _send(client: StewardClient, batch: list[dict[str, Any]], lines: list[int], summary: PushSummary) -> None:
    try:
        results = client.lineage_batch(batch)
    except StewardError as exc:
        if exc.status == 413 and len(batch) > 1:  # larger than the server takes in one request: halves
            half = len(batch) // 2
            _send(client, batch[:half], lines[:half], summary)
            _send(client, batch[half:], lines[half:], summary)
            return
        if not isinstance(exc, ValidationError):
            raise
        line, field_name = _line_of(exc, lines)
        if line is None:
            raise PushError(f"The server rejected the batch starting at line {lines[0]}: {exc.message}", cause=exc)
        raise PushError(f"line {line} ({field_name}): {_message_for(exc, field_name)}", line=line, cause=exc) from None
    summary.batches += 1
    summary.sent += len(batch)
    for result in results:
        summary.statuses[result.status] = summary.statuses.get(result.status, 0) + 1
        if result.status == "applied":
            summary.applied += 1
        elif result.status == "duplicate":
            summary.duplicate += 1


def _line_of(exc: ValidationError, lines: list[int]) -> tuple[int | None, str]:
    """The file line of the first event the server named (``events[3].eventTime`` or ``[3].eventTime``)."""
    for error in exc.errors:
        name = error.field or ""
        rest = name[len("events") :] if name.startswith("events[") else name
        if rest.startswith("[") and "]" in rest:
            index_text, _, tail = rest[1:].partition("]")
            if index_text.isdigit() and int(index_text) < len(lines):
                return lines[int(index_text)], name
    return None, ""


def _message_for(exc: ValidationError, field_name: str) -> str:
    for error in exc.errors:
        if error.field == field_name:
            return error.message
    return exc.message
