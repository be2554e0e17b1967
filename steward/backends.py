"""Load pluggable backends by the short name chosen in settings (``STEWARD_<KIND>_BACKEND``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

__all__ = ["load_backend", "reset_backends"]

_SETTING_FOR_KIND = {
    "search": ("STEWARD_SEARCH_BACKEND", "STEWARD_SEARCH_OPTIONS"),
    "graph": ("STEWARD_GRAPH_BACKEND", "STEWARD_GRAPH_OPTIONS"),
    "workspace": ("STEWARD_WORKSPACE_CONNECTOR", "STEWARD_WORKSPACE_OPTIONS"),
    "dataplane": ("STEWARD_DATAPLANE_CONNECTOR", "STEWARD_DATAPLANE_OPTIONS"),
}


@cache
def load_backend(kind: str) -> Any:
    """Return the (cached) backend instance for ``kind``; no network access happens here."""
    name_setting, options_setting = _SETTING_FOR_KIND[kind]
    name = getattr(settings, name_setting)
    table = settings.STEWARD_BACKENDS.get(kind, {})
    if name not in table:
        valid = ", ".join(sorted(table)) or "none"
        raise ImproperlyConfigured(f"{name_setting}={name!r} is not a known {kind} backend; choose one of: {valid}")
    cls = import_string(table[name])
    return cls(**getattr(settings, options_setting, {}))


def reset_backends(**_: Any) -> None:
    """Forget cached backends (after ``override_settings`` in tests)."""
    load_backend.cache_clear()


setting_changed.connect(reset_backends)
