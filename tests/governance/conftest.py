"""Datasets at every level (owned by the sales-eng group, i.e. olive), and helpers to ask and approve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from catalog import services as catalog
from catalog.models import Dataset
from steward.identity import Role
from tests.conftest import make_user

NS = "postgres://warehouse:5432"


@pytest.fixture
def levelled(make_dataset, data_owner) -> dict[str, Dataset]:
    """One dataset per level C1..C4, each owned by the group sales-eng (olive is in it)."""
    owners = ["group:sales-eng"]
    return {
        "C1": make_dataset("web.public.pages", owners=owners),
        "C2": make_dataset("sales.public.orders", owners=owners, classification="C2"),
        "C3": make_dataset("sales.public.customers", owners=owners, tags=["pii.email"]),
        "C4": make_dataset("hr.public.salaries", owners=owners, tags=["secret.source"]),
    }


@pytest.fixture
def multi_role(db) -> User:
    """Someone who is both privacy officer and data steward."""
    return make_user("pam", Role.PRIVACY_OFFICER, Role.DATA_STEWARD)


@pytest.fixture
def ask(client_for, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST an access request as ``user``; returns the response (after-commit work, e.g. e-mail, is run)."""

    def post(user: User, datasets: list[Any], purpose: str = "incident-response", duration: str = "PT4H", **extra: Any):
        body = {
            "datasets": [str(d.pk) if isinstance(d, Dataset) else d for d in datasets],
            "purpose": purpose,
            "justification": "Investigating ticket INC-42.",
            "duration": duration,
            **extra,
        }
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(user).post("/api/v1/access-requests", body, format="json")

    return post


@pytest.fixture
def act(client_for, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """POST ``/access-requests/{id}/{verb}`` (or ``/grants/...`` with ``kind="grants"``) as ``user``."""

    def post(user: User | None, pk: Any, verb: str, body: dict | None = None, kind: str = "access-requests"):
        client = client_for(user) if user is not None else APIClient()
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/api/v1/{kind}/{pk}/{verb}", body or {}, format="json")

    return post


def errors(res: Any) -> dict[str, str]:
    """Field → code of an error response."""
    return {e["field"]: e["code"] for e in res.json()["errors"]}


def tag(dataset: Dataset, key: str, actor: User) -> None:
    catalog.dataset_tag_add(actor=actor, dataset=dataset, key=key)
