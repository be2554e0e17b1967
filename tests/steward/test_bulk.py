"""``steward.bulk.update_objects`` / ``update_rows``: what ``bulk_update`` writes, in one statement.

Run on the test database (PostgreSQL: the set-based ``UPDATE ... FROM unnest``), and on SQLite with
``DATABASE_URL=sqlite:...`` (Django's ``bulk_update``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from steward.bulk import update_objects, update_rows
from tests.conftest import make_user
from workspaces.choices import WorkspaceState
from workspaces.models import Template, Workspace

pytestmark = pytest.mark.django_db


def _workspaces(count: int) -> list[Workspace]:
    owner = make_user("ada")
    template = Template.objects.get(name="jupyter-cpu")
    return [
        Workspace.objects.create(
            name=f"w{i}", owner=owner, template=template, cpu_millis=100, memory_bytes=2**28, connector="local"
        )
        for i in range(count)
    ]


def test_update_objects_writes_each_objects_values_and_leaves_the_rest(workspace_templates):
    workspaces = _workspaces(5)
    other = make_user("bob")
    now = timezone.now().replace(microsecond=0)
    changed = workspaces[:3]
    for i, workspace in enumerate(changed):
        workspace.state = WorkspaceState.RUNNING if i else WorkspaceState.FAILED
        workspace.message = f"it's {i} 'quoted' \\ text"
        workspace.retry_at = now + timedelta(minutes=i) if i != 1 else None  # nulls beside values
        workspace.owner_id = other.pk if i == 2 else workspace.owner_id  # a foreign key by its field name
        workspace.attempts = i + 7
    with CaptureQueriesContext(connection) as queries:
        assert update_objects(Workspace, changed, ["state", "message", "retry_at", "owner", "attempts"]) == 3
    if connection.vendor == "postgresql":
        assert len(queries) == 1, [q["sql"][:120] for q in queries]
    stored = {w.pk: w for w in Workspace.objects.all()}
    for i, workspace in enumerate(changed):
        row = stored[workspace.pk]
        assert row.state == (WorkspaceState.RUNNING if i else WorkspaceState.FAILED)
        assert row.message == f"it's {i} 'quoted' \\ text"
        assert row.retry_at == (now + timedelta(minutes=i) if i != 1 else None)
        assert row.owner_id == (other.pk if i == 2 else workspaces[0].owner_id)
        assert row.attempts == i + 7
    for untouched in workspaces[3:]:
        row = stored[untouched.pk]
        assert (row.state, row.message, row.attempts) == (WorkspaceState.REQUESTED, "", 0)


def test_update_rows_writes_json_columns_as_json(workspace_templates):
    template = Template.objects.get(name="jupyter-cpu")
    command = ["start-notebook.sh", "--NotebookApp.token=", {"env": {"A": "é"}}]
    assert update_rows(Template, ["command", "enabled"], [(template.pk, command, False)]) == 1
    template.refresh_from_db()
    assert template.command == command and template.enabled is False


def test_update_objects_with_nothing_to_write_sends_nothing(workspace_templates):
    with CaptureQueriesContext(connection) as queries:
        assert update_objects(Workspace, [], ["state"]) == 0
    assert not queries
