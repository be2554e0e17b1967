"""End to end in chromium: the search box's typeahead is used from the keyboard alone."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_typeahead_from_the_keyboard(login, shot, make_dataset):
    make_dataset("sales.orders")
    make_dataset("sales.refunds")
    page = login("stella")
    page.goto("/")
    box = page.get_by_role("combobox", name="Search")
    box.press_sequentially("sales", delay=30)
    page.locator("#suggestion-list [role=option]").nth(1).wait_for()
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    box.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert active == "suggestion-2"
    assert page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    shot(page, "second-suggestion")
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == "suggestion-1"
    name = page.locator("#suggestion-1").inner_text().split()[-1]
    box.press("Enter")
    page.wait_for_url("**/datasets/*/")
    assert name in page.locator("h1").inner_text()
