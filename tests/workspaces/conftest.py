"""Workspace fixtures: grants for the cast, the local connector on a private state directory, API helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog.models import Dataset
from governance.models import Grant
from governance.services.access_requests import access_request_create

NS = "postgres://warehouse:5432"


@pytest.fixture(autouse=True)
def _templates(workspace_templates) -> None:
    """Every workspace test has the default templates, whatever ran before it."""


@pytest.fixture
def grant(django_capture_on_commit_callbacks) -> Callable[..., list[Grant]]:
    """Give ``user`` a grant on each dataset (C1: auto-approved for analytics); returns the grants."""

    def give(user: User, *datasets: Dataset, duration: timedelta = timedelta(days=1)) -> list[Grant]:
        with django_capture_on_commit_callbacks(execute=True):
            request = access_request_create(
                actor=user,
                datasets=[d.pk for d in datasets],
                purpose="analytics",
                justification="workspace tests",
                duration=duration,
            )
        return list(Grant.objects.filter(request=request).order_by("created_at"))

    return give


@pytest.fixture
def local_connector(local_workspaces: Path) -> Path:
    """Steward on the local connector (``local_workspaces`` of tests/conftest.py); yields the state directory."""
    return local_workspaces


@pytest.fixture
def call(client_for, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """``call(user, method, path, body)``: an API call whose after-commit work (reconciles) runs at once."""

    def send(user: User | None, method: str, path: str, body: Any = None) -> Any:
        client = client_for(user) if user is not None else APIClient()
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(path, body, format="json")

    return send


def errors(res: Any) -> dict[str | None, str]:
    """Field → code of an error response."""
    return {e["field"]: e["code"] for e in res.json()["errors"]}
