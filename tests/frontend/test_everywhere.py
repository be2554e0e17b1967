"""Fixes every page needs: JSON errors for unknown API paths, a 404 page with navigation, the API docs sending
people to log in, a favicon, a skip link to the content."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_paths_answer_the_json_error(client, data_scientist):
    for user in (None, data_scientist):
        if user is not None:
            client.force_login(user)
        res = client.get("/api/v1/no-such-thing/at/all")
        assert res.status_code == 404 and res["Content-Type"] == "application/json"
        assert res.json() == {
            "status": 404,
            "code": "not_found",
            "detail": "No API endpoint at /api/v1/no-such-thing/at/all.",
            "errors": [],
        }
    assert client.post("/api/v1/nothing-here", {}).json()["code"] == "not_found", "a POST too (no CSRF 403)"
    assert client.get("/api/v1/datasets").status_code == 200, "known endpoints still answer"


def test_unknown_pages_get_a_404_page_with_navigation(client, data_scientist):
    client.force_login(data_scientist)
    res = client.get("/no/such/page/")
    page = res.content.decode()
    assert res.status_code == 404 and "Not found" in page and "/no/such/page/" in page
    assert 'href="/access/"' in page and 'href="/workspaces/"' in page, "the nav is there"


def test_api_docs_send_people_to_log_in(client, data_scientist):
    res = client.get("/api/docs/")
    assert res.status_code == 302 and res.url.startswith("/accounts/login/?next=/api/docs/")
    client.force_login(data_scientist)
    assert client.get("/api/docs/").status_code == 200


def test_pages_have_a_favicon_and_a_skip_link(client, data_scientist):
    client.force_login(data_scientist)
    page = client.get("/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page
