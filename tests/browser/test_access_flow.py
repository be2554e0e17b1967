"""End to end in chromium: a data scientist finds a dataset and requests access, its owner approves from the
inbox, the grant shows with its countdown, a workspace starts with it, the owner revokes the grant: the dataset
page says so and the workspace loses the dataset."""

from __future__ import annotations

import json
import re

import pytest
import requests

from governance.models import Grant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_request_approve_countdown_workspace_revoke(
    login, shot, make_dataset, data_scientist, data_owner, workspace_templates, local_workspaces
):
    orders = make_dataset(
        "sales.public.orders", description="Orders placed online", owners=["group:sales-eng"], classification="C2"
    )

    dana = login("dana")
    dana.fill("input[name=q]", "orders")
    dana.keyboard.press("Enter")
    dana.get_by_role("link", name=re.compile("sales.public.orders")).first.click()
    dana.wait_for_url(re.compile(f"/datasets/{orders.pk}/"))
    assert "No access" in dana.locator("#access-standing").inner_text()
    shot(dana, "dataset-no-access")

    dana.get_by_role("link", name="Request access").click()
    assert "at most 30 days (P30D)" in dana.locator("#max-duration").inner_text()
    assert "owner of sales.public.orders" in dana.locator("#approvers").inner_text()
    dana.select_option("select[name=purpose]", "analytics")
    dana.fill("input[name=duration_amount]", "2")
    dana.select_option("select[name=duration_unit]", "days")
    dana.fill("textarea[name=justification]", "Churn study Q3")
    shot(dana, "request-form")
    dana.get_by_role("button", name="Send request").click()
    dana.wait_for_url(re.compile(r"/access/requests/[0-9a-f-]+/$"))
    request_url = dana.url
    assert "awaited" in dana.locator(".approval-slots").inner_text()
    dana.goto(f"/datasets/{orders.pk}/")
    assert "awaiting owner of sales.public.orders" in dana.locator("#access-standing").inner_text()

    olive = login("olive")
    assert olive.locator("#nav-approvals .count-badge").inner_text() == "1"
    olive.click("#nav-approvals")
    olive.get_by_role("link", name="dana").click()
    assert olive.url == request_url
    olive.fill("input[name=comment]", "fine for Q3")
    shot(olive, "approver-request-page")
    olive.get_by_role("button", name="Approve").click()
    olive.wait_for_load_state()
    assert "approved" in olive.locator("h1").inner_text()
    assert olive.locator("#nav-approvals .count-badge").count() == 0

    dana.goto("/access/")
    countdown = dana.locator(".my-grants time.countdown").first.inner_text()
    assert re.fullmatch(r"(1 d 23 h|2 d 0 h) left", countdown), countdown
    dana.goto(f"/datasets/{orders.pk}/")
    assert "Granted" in dana.locator("#access-standing").inner_text()
    shot(dana, "granted-with-countdown")

    dana.click("text=Workspaces")
    dana.get_by_role("link", name="New workspace").click()
    dana.check("input[name=template][value=jupyter-cpu]")
    dana.fill("input[name=name]", "churn")
    dana.get_by_role("checkbox", name=re.compile("sales.public.orders")).check()
    shot(dana, "new-workspace")
    dana.get_by_role("button", name="Create workspace").click()
    dana.wait_for_url(re.compile(r"/workspaces/[0-9a-f-]+/$"))
    workspace_url = dana.url
    assert dana.locator("#ws-state").inner_text() == "running"
    open_url = dana.locator("#ws-open").get_attribute("href")
    home = requests.get(f"{open_url}datasets.json", timeout=5).json()
    assert [d["dataset"]["name"] for d in home["datasets"]] == ["sales.public.orders"]
    assert "yes" in dana.locator(".ws-datasets").inner_text()
    shot(dana, "workspace-running")

    grant = Grant.objects.get(dataset=orders, user__isnull=False)
    olive.goto("/access/grants/")
    row = olive.locator(f"#grant-{grant.pk}")
    row.locator("input[name=reason]").fill("project over")
    row.get_by_role("button", name="Revoke").click()
    olive.wait_for_load_state()
    assert olive.locator(f"#grant-{grant.pk}").count() == 0, "a revoked grant leaves the list of current grants"
    shot(olive, "after-revoke")

    dana.goto(f"/datasets/{orders.pk}/")
    assert "No access" in dana.locator("#access-standing").inner_text()
    dana.goto("/access/")
    assert "project over" in dana.locator(f"#grant-{grant.pk}").inner_text()
    shot(dana, "my-access-after-revoke")
    dana.goto(workspace_url)
    assert "no" in dana.locator(".ws-datasets").inner_text().split("sales.public.orders", 1)[1]
    assert dana.locator("#ws-state").inner_text() == "stopped", "no granted dataset remains: the workspace stops"
    home = local_workspaces / workspace_url.rstrip("/").rsplit("/", 1)[1] / "home"
    assert json.loads((home / "datasets.json").read_text())["datasets"] == []
    shot(dana, "workspace-lost-the-dataset")
