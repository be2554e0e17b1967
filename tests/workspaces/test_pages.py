"""Workspace pages on the local connector: create from a template with datasets from my grants, open, stop,
start, delete; the high-memory template beside CPU and GPU; errors shown with their field."""

from __future__ import annotations

import re

import pytest
import requests

from workspaces.models import Workspace

pytestmark = [pytest.mark.usefixtures("local_connector"), pytest.mark.django_db]


@pytest.fixture
def page_client(client, data_scientist):
    client.force_login(data_scientist)
    return client


def test_new_workspace_offers_templates_and_only_my_granted_datasets(page_client, data_scientist, grant, make_dataset):
    granted = make_dataset("sales.public.orders")
    make_dataset("crm.public.people")
    grant(data_scientist, granted)
    page = page_client.get("/workspaces/new").content.decode()
    assert re.findall(r'name="template" value="([a-z-]+)"', page) == [
        "jupyter-cpu",
        "jupyter-gpu",
        "jupyter-highmem",
        "vscode",
    ]
    assert "24Gi memory" in page, "the high-memory profile shows its allowance"
    assert "sales.public.orders" in page and "crm.public.people" not in page


def test_create_open_stop_start_delete(
    page_client, data_scientist, grant, make_dataset, django_capture_on_commit_callbacks
):
    ds = make_dataset("sales.public.orders")
    grant(data_scientist, ds)
    with django_capture_on_commit_callbacks(execute=True):
        res = page_client.post(
            "/workspaces/new", {"template": "jupyter-cpu", "dataset": [str(ds.pk)], "name": "churn", "start": "1"}
        )
    workspace = Workspace.objects.get()
    assert res.status_code == 302 and res.url == f"/workspaces/{workspace.pk}/"
    page = page_client.get(res.url).content.decode()
    workspace.refresh_from_db()
    assert workspace.state == "running" and f'href="{workspace.url}"' in page and "Open" in page
    assert "sales.public.orders" in page and "README.md" in page
    assert "datasets.json" in requests.get(workspace.url, timeout=5).text
    listing = page_client.get("/workspaces/").content.decode()
    assert "churn" in listing and "running" in listing

    for verb, state in (("stop", "stopped"), ("start", "running"), ("delete", "deleted")):
        with django_capture_on_commit_callbacks(execute=True):
            assert page_client.post(f"/workspaces/{workspace.pk}/{verb}").status_code == 302
        workspace.refresh_from_db()
        assert workspace.state == state, verb
    assert "churn" not in page_client.get("/workspaces/").content.decode(), "deleted workspaces leave the list"


def test_bad_resources_and_ungranted_datasets_are_refused_with_their_field(page_client, data_scientist, make_dataset):
    ds = make_dataset("crm.public.people")
    bad = page_client.post("/workspaces/new", {"template": "jupyter-cpu", "memory": "lots"})
    assert bad.status_code == 400 and "resources.memory" in bad.content.decode()
    ungranted = page_client.post("/workspaces/new", {"template": "jupyter-cpu", "dataset": [str(ds.pk)]})
    assert ungranted.status_code == 403 and "crm.public.people" in ungranted.content.decode()
    assert not Workspace.objects.exists()


def test_others_workspaces_are_not_found(client, page_client, other_scientist, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page_client.post("/workspaces/new", {"template": "vscode", "start": "0"})
    workspace = Workspace.objects.get()
    client.force_login(other_scientist)
    assert client.get(f"/workspaces/{workspace.pk}/").status_code == 404
    assert client.post(f"/workspaces/{workspace.pk}/delete").status_code == 404
