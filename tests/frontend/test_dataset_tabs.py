"""The dataset page's tabs (schema, lineage, access, versions, history), the header badges after a tag change,
and the level badges' contrast."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catalog.models import Dataset
from lineage.propagation import drain
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.lineage.events import NS, complete, dataset, run_event

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def pipeline(data_steward, admin_user):
    from catalog import services as catalog

    catalog.tag_create(actor=admin_user, key="email", implied_level="C3")
    producer = make_producer(data_steward, NS, "etl")
    ingest(
        actor=producer,
        events=[
            run_event(
                "load",
                "COMPLETE",
                inputs=[dataset("users", fields=["email", "id"])],
                outputs=[
                    dataset("clean", fields=["mail", "uid"], columns={"mail": [("users", "email")]}, version="v7")
                ],
            ),
            complete("report", ["clean"], ["summary"]),
        ],
        batch=True,
    )
    drain()
    users = Dataset.objects.get(namespace=NS, name="users")
    catalog.dataset_tag_add(actor=producer, dataset=users, key="email", field_name="email")
    drain()
    return {d.name: d for d in Dataset.objects.filter(namespace=NS)}


def page(client, user, ds, tab: str | None = None, htmx: bool = False):
    client.force_login(user)
    if htmx:
        return client.get(f"/datasets/{ds.pk}/tab", {"tab": tab}, **HTMX)
    return client.get(f"/datasets/{ds.pk}/", {"tab": tab} if tab else {})


def text(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_page_shows_five_tabs_with_schema_chosen(client, data_steward, pipeline):
    html = page(client, data_steward, pipeline["clean"]).content.decode()
    tabs = re.findall(r'role="tab" id="tab-(\w+)"[^>]*aria-selected="(\w+)"', html)
    assert tabs == [
        ("schema", "true"),
        ("lineage", "false"),
        ("access", "false"),
        ("versions", "false"),
        ("history", "false"),
    ]
    assert f'hx-get="/datasets/{pipeline["clean"].pk}/tab?tab=lineage"' in html


def test_schema_tab_tells_direct_from_propagated_column_tags(client, data_steward, pipeline):
    clean = page(client, data_steward, pipeline["clean"], "schema", htmx=True).content.decode()
    row = re.search(r"<tr><td>\d+</td><td><code>mail</code>.*?</tr>", clean, re.S).group(0)
    direct, propagated = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[4:6]
    assert "email" not in direct and 'class="tag propagated"' in propagated and "email" in propagated
    users = page(client, data_steward, pipeline["users"], "schema", htmx=True).content.decode()
    row = re.search(r"<tr><td>\d+</td><td><code>email</code>.*?</tr>", users, re.S).group(0)
    direct, propagated = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[4:6]
    assert ">email" in direct and "email" not in propagated


def test_lineage_tab_lists_the_neighbours_one_hop_away(client, data_steward, pipeline):
    body = text(page(client, data_steward, pipeline["clean"], "lineage", htmx=True))
    assert "Upstream (1 dataset)" in body and "Downstream (1 dataset)" in body
    assert "users" in body and "summary" in body and "via load" in body
    assert (
        'aria-selected="true"' in page(client, data_steward, pipeline["clean"], "lineage", htmx=True).content.decode()
    )


def test_versions_tab_lists_the_recorded_versions(client, data_steward, pipeline):
    body = text(page(client, data_steward, pipeline["clean"], "versions", htmx=True))
    assert "v7" in body and "mail, uid" in body
    assert "No versions recorded" in text(page(client, data_steward, pipeline["users"], "versions", htmx=True))


def test_history_tab_says_what_changed_and_when(client, data_steward, pipeline):
    body = text(page(client, data_steward, pipeline["users"], "history", htmx=True))
    assert "tag email added to column email" in body
    assert "effective level: C1 → C3" in body
    assert "first recorded" in body


def test_access_tab_shows_what_i_hold(client, data_scientist, pipeline):
    body = text(page(client, data_scientist, pipeline["clean"], "access", htmx=True))
    assert "No access" in body and "Request access" in body


def test_a_tab_without_htmx_is_the_whole_page_on_that_tab(client, data_steward, pipeline):
    ds = pipeline["clean"]
    client.force_login(data_steward)
    response = client.get(f"/datasets/{ds.pk}/tab", {"tab": "versions"})
    assert response.status_code == 302 and response["Location"] == f"/datasets/{ds.pk}/?tab=versions"
    full = page(client, data_steward, ds, "versions")
    assert "<h1>" in full.content.decode() and "v7" in text(full)
    assert client.get(f"/datasets/{ds.pk}/", {"tab": "nope"}).status_code == 404


def test_a_dataset_i_may_not_see_has_no_tabs_either(client, data_scientist, pipeline, data_steward):
    from catalog import services as catalog

    catalog.dataset_classify(actor=data_steward, dataset=pipeline["summary"], level="C4")
    assert page(client, data_scientist, pipeline["summary"], "history", htmx=True).status_code == 404


def test_a_tag_change_refreshes_the_header_badges(client, data_steward, admin_user, pipeline):
    from catalog import services as catalog

    catalog.tag_create(actor=admin_user, key="secret", implied_level="C4")
    ds = pipeline["summary"]
    assert 'title="Classification C3"' in page(client, data_steward, ds).content.decode()
    response = client.post(f"/datasets/{ds.pk}/tags/add", {"key": "secret"}, **HTMX)
    html = response.content.decode()
    assert re.search(r'<span id="dataset-level" hx-swap-oob="true"><span class="level level-c4"', html)
    assert re.search(r'<span id="dataset-levels" hx-swap-oob="true">effective <span class="level level-c4"', html)
    # Not on the full page: there the header is rendered fresh anyway.
    assert "hx-swap-oob" not in page(client, data_steward, ds).content.decode()


def test_level_badges_have_readable_contrast():
    """White bold 12px text on each level's colour: WCAG AA asks 4.5:1."""
    css = (Path(__file__).resolve().parents[2] / "frontend/static/frontend/steward.css").read_text()

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for level in ("c1", "c2", "c3", "c4"):
        colour = re.search(rf"--{level}: (#[0-9a-fA-F]{{6}})", css).group(1)
        assert 1.05 / (luminance(colour) + 0.05) >= 4.5, (level, colour)


def test_the_search_box_is_an_aria_combobox_over_a_listbox(client, data_scientist, make_dataset):
    make_dataset("sales.cleaned")
    client.force_login(data_scientist)
    html = client.get("/").content.decode()
    box = re.search(r'<input type="search" name="q"[^>]*>', html, re.S).group(0)
    for attribute in (
        'role="combobox"',
        'aria-autocomplete="list"',
        'aria-expanded="false"',
        'aria-controls="suggestion-list"',
    ):
        assert attribute in box
    assert "frontend/typeahead.js" in html
    options = client.get("/search/suggest", {"q": "clea"}).content.decode()
    assert 'id="suggestion-list" role="listbox"' in options
    assert re.findall(r'<li role="option" id="(suggestion-\d+)" aria-selected="false">', options) == ["suggestion-1"]
    empty = client.get("/search/suggest", {"q": "zzzz-nothing"}).content.decode()
    assert 'role="listbox"' in empty and "hidden" in empty
