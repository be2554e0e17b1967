"""The only place that reads the process environment.

Every setting Steward takes from the environment is declared here with its default, so the README's
configuration table and the code cannot drift apart (``manage.py steward_config`` prints this table).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["VARIABLES", "Variable", "env_bool", "env_int", "env_json", "env_list", "env_str"]

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Variable:
    """One environment variable Steward reads, with its default and meaning."""

    name: str
    default: str
    help: str


VARIABLES: dict[str, Variable] = {}


def _declare(name: str, default: str, help: str, shown: str | None = None) -> str:
    VARIABLES[name] = Variable(name, default if shown is None else shown, help)
    return os.environ.get(name, default)


def env_str(name: str, default: str, help: str, *, shown: str | None = None) -> str:
    """A string variable; ``shown`` is the default as documented when the real one is computed."""
    return _declare(name, default, help, shown)


def env_bool(name: str, default: bool, help: str) -> bool:
    raw = _declare(name, "1" if default else "0", help)
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int, help: str) -> int:
    raw = _declare(name, str(default), help)
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str], help: str) -> list[str]:
    raw = _declare(name, ",".join(default), help)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json(name: str, default: Any, help: str) -> Any:
    raw = _declare(name, json.dumps(default), help)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} must be JSON: {exc}") from exc
