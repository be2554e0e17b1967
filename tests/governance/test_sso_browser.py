"""A real browser (Debian's chromium driven by Playwright's Python package, never Playwright's own browser
download) signs in to a live Steward through Keycloak's own login page, and logs out of both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import keycloak as kc

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("keycloak_issuer")]


@pytest.fixture
def steward_redirect(live_server: Any) -> Iterator[str]:
    """Let the realm's `steward` client redirect to this live server's random port, for this test only."""
    admin = kc.Admin()
    client = admin.call("GET", "/clients", params={"clientId": "steward"})[0]
    allowed = f"{live_server.url}/*"
    admin.call("PUT", f"/clients/{client['id']}", json={**client, "redirectUris": [*client["redirectUris"], allowed]})
    try:
        yield live_server.url
    finally:
        current = admin.call("GET", f"/clients/{client['id']}")
        current["redirectUris"] = [u for u in current["redirectUris"] if u != allowed]
        admin.call("PUT", f"/clients/{client['id']}", json=current)


def test_sign_in_through_keycloaks_login_page_and_out_again(browser, steward_redirect, transactional_db):
    admin = kc.Admin()
    with admin.temporary_user("data-steward") as username:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{steward_redirect}/accounts/login/")
        page.click("text=Log in with single sign-on")
        page.wait_for_url("http://127.0.0.1:58080/realms/steward/**")  # Keycloak's own page
        page.fill("#username", username)
        page.fill("#password", kc.PASSWORD)
        page.click("#kc-login")
        page.wait_for_url(f"{steward_redirect}/**")
        assert page.url.split("?")[0].rstrip("/") == steward_redirect
        me = page.request.get(f"{steward_redirect}/api/v1/me").json()
        assert me["username"] == username and "data-steward" in me["roles"]
        assert len(admin.sessions(username)) == 1

        page.click("text=Log out")
        page.wait_for_url(f"{steward_redirect}/accounts/login/**")
        assert admin.sessions(username) == []
        page.click("text=Log in with single sign-on")  # no SSO session left: Keycloak asks again
        page.wait_for_selector("#kc-login")
