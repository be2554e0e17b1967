"""A real browser (Debian's chromium, driven by Playwright's Python package) against a live server on the test
PostgreSQL. Playwright's own browser download is never used: ``scripts/browser.sh`` (``make browser``, a
prerequisite of ``make test``) installs chromium. Screenshots go to ``tests/artifacts/`` (ignored by git)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shot(page, "step")`` saves ``tests/artifacts/<test>-<n>-<step>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    counter = iter(range(1, 100))

    def save(page: Any, step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def login(browser: Any, live_server: Any) -> Callable[[str], Any]:
    """A fresh browser context logged in through the login form as ``username`` (password ``pw-<username>``)."""

    def open_as(username: str) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", f"pw-{username}")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return open_as
