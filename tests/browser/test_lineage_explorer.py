"""End to end in chromium: the lineage explorer on a few hundred nodes (fit, zoom, reset, search, collapse and
expand a dataset's neighbours, a column's path end to end, depth validated)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.models import Dataset
from lineage.propagation import drain
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.lineage.events import NS, at, complete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FANS, WIDTH = 15, 10  # raw -> 15 jobs -> 150 marts -> 150 jobs -> 150 reports: 301 datasets, 165 jobs


def wide_graph(producer: Any) -> None:
    events = []
    for i in range(FANS):
        marts = [f"mart_{i}_{k}" for k in range(WIDTH)]
        columns = {"mart_0_0": {"mail": [("raw", "email")]}} if i == 0 else None
        events.append(complete(f"split_{i}", ["raw"], marts, columns=columns))
        for k, mart in enumerate(marts):
            columns = {"report_0_0": {"contact": [("mart_0_0", "mail")]}} if (i, k) == (0, 0) else None
            events.append(complete(f"build_{i}_{k}", [mart], [f"report_{i}_{k}"], when=at(1), columns=columns))
    for start in range(0, len(events), 500):
        ingest(actor=producer, events=events[start : start + 500], batch=True)
    drain()


def graph_count(page: Any, selector: str) -> int:
    return page.evaluate(f"() => window.stewardLineage.graph().nodes('{selector}').length")


def zoom(page: Any) -> float:
    return page.evaluate("() => window.stewardLineage.graph().zoom()")


def test_explorer_at_a_few_hundred_nodes(login, shot, data_steward):
    wide_graph(make_producer(data_steward, NS, "etl"))
    raw = Dataset.objects.get(namespace=NS, name="raw")
    assert Dataset.objects.filter(namespace=NS).count() == 1 + 2 * FANS * WIDTH

    page = login("stella")
    page.goto(f"/datasets/{raw.pk}/lineage?direction=downstream&depth=4")
    status = page.locator("#lineage-status")
    status.get_by_text("301 datasets, 165 jobs").wait_for()
    assert graph_count(page, '[kind = "dataset"]') == 301

    # Fit shows everything (zoomed far out), + zooms in, Reset comes back to the first drawing.
    page.get_by_role("button", name="Fit").click()
    fitted = zoom(page)
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    assert zoom(page) == pytest.approx(fitted * 1.25 * 1.25, rel=0.01)
    page.get_by_role("button", name="Zoom out").click()
    assert zoom(page) == pytest.approx(fitted * 1.25, rel=0.01)
    shot(page, "fitted")

    # Search within the graph: finds the one dataset, selects it, says how many match.
    page.fill("#lineage-search input[name=q]", "report_7_3")
    page.get_by_role("button", name="Find", exact=True).click()
    status.get_by_text("1 node match").wait_for()
    assert page.evaluate("() => window.stewardLineage.graph().nodes('.match').map(n => n.data('name'))") == [
        "report_7_3"
    ]
    page.fill("#lineage-search input[name=q]", "no-such-thing")
    page.get_by_role("button", name="Find", exact=True).click()
    status.get_by_text("Nothing in this graph is named like").wait_for()

    # Collapse a mart's neighbours (its job and report go), then expand them back from the API.
    page.fill("#lineage-search input[name=q]", "mart_4_2")
    page.get_by_role("button", name="Find", exact=True).click()
    status.get_by_text("1 node match").wait_for()
    page.get_by_role("button", name="Collapse").click()
    status.get_by_text("Hid ").wait_for()
    assert graph_count(page, '[name = "report_4_2"]') == 0
    assert graph_count(page, '[kind = "dataset"]') == 300
    page.get_by_role("button", name="Expand").click()
    status.get_by_text("Added ").wait_for()
    assert graph_count(page, '[name = "report_4_2"]') == 1
    shot(page, "expanded")

    page.get_by_role("button", name="Reset").click()
    status.get_by_text("301 datasets, 165 jobs").wait_for()

    # A column's path end to end: raw.email -> mart_0_0.mail -> report_0_0.contact.
    page.check("input[name=columns]")
    status.get_by_text("columns").wait_for()
    page.evaluate("() => window.stewardLineage.graph().nodes('[kind = \"column\"][name = \"mail\"]').emit('tap')")
    status.get_by_text("Path of column mail: 3 columns").wait_for()
    path = page.evaluate("() => window.stewardLineage.graph().nodes('node.path').map(n => n.data('name')).sort()")
    assert path == ["contact", "email", "mail"]
    shot(page, "column-path")

    # Depth out of range: a clear message, no request.
    page.fill("input[name=depth]", "99")
    page.locator("input[name=depth]").dispatch_event("change")
    status.get_by_text("Depth must be a whole number between 1 and").wait_for()
    shot(page, "depth-error")
