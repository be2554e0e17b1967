"""At a phone's width (390 px, an iPhone 12-15) the header and navigation fit: nothing scrolls sideways."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/", "/access/", "/approvals/", "/workspaces/", "/compliance/", "/tokens/"]


def test_nav_fits_a_390px_screen(login, shot, compliance_officer):
    page = login(compliance_officer.username)
    page.set_viewport_size({"width": 390, "height": 844})
    for url in PAGES:
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"{url} is {overflow}px wide at 390px"
        assert page.get_by_role("link", name="My access").is_visible()
    shot(page, "nav-390")
