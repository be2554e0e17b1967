"""Where the command finds the server and the token: the environment first (``STEWARD_URL``, ``STEWARD_TOKEN``),
then a TOML file (``STEWARD_CONFIG``, or ``$XDG_CONFIG_HOME/steward/config.toml``, by default
``~/.config/steward/config.toml``)::

    url = "https://steward.example.org"
    token = "stw_..."

    [profiles.staging]          # chosen with --profile staging or STEWARD_PROFILE=staging
    url = "https://steward-staging.example.org"
    token = "stw_..."

A file holding a token that other users may read draws a warning (``chmod 600`` it).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Config", "ConfigError", "config_path", "load_config"]


class ConfigError(Exception):
    """The configuration file cannot be read or names an unknown profile."""


@dataclass(frozen=True)
class Config:
    url: str | None
    token: str | None
    source: str  # where the token came from: "environment", a file path, or "none"

    def __repr__(self) -> str:  # never shows the token
        return f"Config(url={self.url!r}, token={'set' if self.token else 'none'}, source={self.source!r})"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("STEWARD_CONFIG"):
        return Path(env["STEWARD_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "steward" / "config.toml"


def _read(path: Path, warn: Callable[[str], None]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"warning: {path} may be read by other users and can hold your token; run: chmod 600 {path}")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from None


def load_config(
    *,
    url: str | None = None,
    token: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = lambda message: None,
) -> Config:
    """The URL and token: arguments, then ``STEWARD_URL``/``STEWARD_TOKEN``, then the file (its profile)."""
    env = os.environ if env is None else env
    url = url or env.get("STEWARD_URL") or None
    source = "argument" if token else "none"
    if not token and env.get("STEWARD_TOKEN"):
        token, source = env["STEWARD_TOKEN"], "environment"
    if url and token:
        return Config(url, token, source)
    path = config_path(env)
    data = _read(path, warn)
    profile = profile or env.get("STEWARD_PROFILE") or None
    if profile:
        profiles = data.get("profiles") or {}
        if profile not in profiles:
            raise ConfigError(f"No profile {profile!r} in {path} (it has: {', '.join(sorted(profiles)) or 'none'}).")
        data = profiles[profile]
    if not url and isinstance(data.get("url"), str):
        url = data["url"]
    if not token and isinstance(data.get("token"), str):
        token, source = data["token"], str(path)
    return Config(url, token, source)
