"""The usual cast of users (one per role), API clients and a few catalog objects."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from rest_framework.test import APIClient

from catalog import services
from catalog.validation import parse_dataset
from steward.errors import ProblemCollector
from steward.identity import Role

pytest_plugins = ["tests.servers"]


def make_user(username: str, *roles: str, groups: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, email=f"{username}@example.org")
    for name in (*roles, *groups):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def make_producer(user: User, *namespaces: str) -> User:
    """Make ``user`` a lineage producer allowed on ``namespaces`` (as an admin would, issue 17)."""
    from lineage.models import NamespaceProducer

    user.groups.add(Group.objects.get_or_create(name=Role.LINEAGE_PRODUCER)[0])
    for attr in ("_steward_roles", "_steward_viewer"):
        user.__dict__.pop(attr, None)
    for ns in namespaces:
        NamespaceProducer.objects.get_or_create(namespace=ns, producer=user)
    return user


@pytest.fixture
def data_scientist(db) -> User:
    return make_user("dana", Role.DATA_SCIENTIST)


@pytest.fixture
def other_scientist(db) -> User:
    return make_user("oscar", Role.DATA_SCIENTIST)


@pytest.fixture
def data_owner(db) -> User:
    return make_user("olive", Role.DATA_OWNER, groups=("sales-eng",))


@pytest.fixture
def data_steward(db) -> User:
    return make_user("stella", Role.DATA_STEWARD)


@pytest.fixture
def privacy_officer(db) -> User:
    return make_user("priya", Role.PRIVACY_OFFICER)


@pytest.fixture
def compliance_officer(db) -> User:
    return make_user("carl", Role.COMPLIANCE_OFFICER)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", Role.ADMIN)


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    """An API client logged in (by session) as the given user, or anonymous for ``None``."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


def spec(data: dict[str, Any], path: str = "") -> Any:
    problems = ProblemCollector()
    parsed = parse_dataset(data, path, problems)
    problems.raise_if_any()
    return parsed


@pytest.fixture
def tags(data_steward) -> dict[str, Any]:
    return {
        "pii.email": services.tag_create(
            actor=data_steward, key="pii.email", implied_level="C3", description="An e-mail address"
        ),
        "secret.source": services.tag_create(actor=data_steward, key="secret.source", implied_level="C4"),
        "finance": services.tag_create(actor=data_steward, key="finance"),
    }


@pytest.fixture
def make_dataset(data_steward, tags, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Create a dataset through the service, running its after-commit work (search indexing) too."""

    def make(name: str, namespace: str = "postgres://warehouse:5432", actor: User | None = None, **extra: Any):
        with django_capture_on_commit_callbacks(execute=True):
            return services.dataset_create(
                actor=actor or data_steward, spec=spec({"namespace": namespace, "name": name, **extra})
            )

    return make


@pytest.fixture
def workspace_templates(db) -> None:
    """The workspace templates of migration 0002 (a transactional test elsewhere may have flushed them)."""
    import importlib

    from django.apps import apps

    importlib.import_module("workspaces.migrations.0002_templates").add_templates(apps, None)
    importlib.import_module("workspaces.migrations.0003_highmem_template").add_template(apps, None)


CHROMIUM = os.environ.get("STEWARD_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def local_workspaces(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Workspaces on the local connector (Python's http.server as every workspace) in a private state directory;
    every workspace process is removed afterwards. Yields the state directory."""
    from connectors.workspaces import get_connector
    from tests.workspace_processes import kill_leftovers

    state_dir = tmp_path / "workspaces"
    settings.STEWARD_WORKSPACE_CONNECTOR = "local"
    settings.STEWARD_WORKSPACE_OPTIONS = {"state_dir": str(state_dir), "use_installed": False, "stop_timeout": 5}
    yield state_dir
    connector = get_connector()
    for workspace_id in list(connector.list_managed()):
        connector.delete(workspace_id)
    assert kill_leftovers(state_dir) == []


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (scripts/browser.sh) to install Debian's chromium.")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server's request threads outlive a kept-alive browser connection: let them close their database
    # connections after each request, so none is left open when the test database is dropped.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()
            # ORM calls made while Playwright's loop runs use a connection of their own context: close it here,
            # or it outlives the test and blocks dropping the test database.
            connections.close_all()
