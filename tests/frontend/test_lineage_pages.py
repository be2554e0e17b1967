"""Lineage in the web UI as a person uses it: the graph page, propagated tags and why, declassifications."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.staticfiles import finders

from catalog import services as catalog
from catalog.models import Dataset
from lineage.models import Declassification, Job, PropagatedTag
from lineage.propagation import drain
from lineage.services.declassify import declassification_request
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.lineage.events import NS, complete, dataset, run_event

pytestmark = pytest.mark.django_db


def ds(name: str) -> Dataset:
    return Dataset.objects.get(namespace=NS, name=name)


def _login(client, user):
    client.force_login(user)
    return client


def _section(page: str, way: str) -> str:
    """The text of the server-rendered upstream/downstream list."""
    match = re.search(rf'<section class="lineage-list" aria-labelledby="lineage-{way}">(.*?)</section>', page, re.S)
    assert match, f"no {way} section"
    return match.group(1)


def _carries(name: str, key: str) -> bool:
    return PropagatedTag.objects.filter(dataset=ds(name), tag__key=key, valid_to__isnull=True).exists()


@pytest.fixture
def pipeline(data_steward, tags):
    """raw --load--> clean --report--> summary, clean --leak--> vault (secret, C4);
    raw is tagged pii.email, which flows to everything downstream."""
    ingest(
        actor=make_producer(data_steward, NS, "etl"),
        events=[
            complete("load", ["raw"], ["clean"]),
            complete("report", ["clean"], ["summary"]),
            complete("leak", ["clean"], ["vault"]),
        ],
        batch=True,
    )
    drain()
    catalog.dataset_tag_add(actor=data_steward, dataset=ds("vault"), key="secret.source", field_name=None)
    catalog.dataset_tag_add(actor=data_steward, dataset=ds("raw"), key="pii.email", field_name=None)
    drain()
    assert ds("vault").effective_classification == "C4" and ds("summary").effective_classification == "C3"


# --- the lineage page -----------------------------------------------------------------------------------


def test_lineage_page_lists_upstream_and_downstream_and_loads_cytoscape(client, data_scientist, pipeline):
    res = _login(client, data_scientist).get(f"/datasets/{ds('clean').pk}/lineage")
    assert res.status_code == 200
    page = res.content.decode()
    upstream, downstream = _section(page, "upstream"), _section(page, "downstream")
    assert "raw" in upstream and "via load" in upstream and ">summary</a>" not in upstream
    assert "summary" in downstream and "via report" in downstream and "raw" not in downstream
    assert f'href="/datasets/{ds("summary").pk}/"' in downstream
    assert "/static/vendor/cytoscape/cytoscape.min.js" in page and "/static/frontend/lineage.js" in page
    assert 'data-graph-url="/api/v1/lineage/graph"' in page
    assert f'data-namespace="{NS}"' in page and 'data-name="clean"' in page
    for control in ('name="direction"', 'name="depth"', 'name="columns"', 'name="at"'):
        assert control in page


def test_a_c4_dataset_downstream_is_not_shown_to_a_data_scientist(client, data_scientist, data_steward, pipeline):
    url = f"/datasets/{ds('clean').pk}/lineage"
    page = _login(client, data_scientist).get(url).content.decode()
    assert "vault" not in page and str(ds("vault").pk) not in page
    # The REST endpoint the graph is drawn from hides it too.
    graph = client.get("/api/v1/lineage/graph", {"namespace": NS, "name": "clean"}).json()
    assert "vault" not in {n.get("name") for n in graph["nodes"]}
    # ... but the path stays honest: an anonymous node, without name, id or namespace.
    hidden = [n for n in graph["nodes"] if n.get("hidden") and n["kind"] == "dataset"]
    assert len(hidden) == 1 and set(hidden[0]) == {"id", "kind", "hidden", "depth"}
    assert "a dataset you may not see" in page
    assert client.get(f"/datasets/{ds('vault').pk}/lineage").status_code == 404
    # A steward sees every dataset.
    assert "vault" in _section(_login(client, data_steward).get(url).content.decode(), "downstream")


def test_lineage_controls_direction_depth_and_as_of(client, data_scientist, pipeline):
    client = _login(client, data_scientist)
    url = f"/datasets/{ds('raw').pk}/lineage"
    page = client.get(url, {"direction": "downstream", "depth": "1"}).content.decode()
    assert 'aria-labelledby="lineage-upstream"' not in page
    downstream = _section(page, "downstream")
    assert "clean" in downstream and ">summary</a>" not in downstream
    assert "summary" in _section(
        client.get(url, {"direction": "downstream", "depth": "2"}).content.decode(), "downstream"
    )
    # Before the pipelines ran (their events are of 2026-01-01 12:00 UTC) there was no lineage.
    before = client.get(url, {"at": "2026-01-01T11:59"}).content.decode()
    assert "No downstream datasets" in before and "as of 2026-01-01 11:59:00 UTC" in before
    assert "clean" in _section(client.get(url, {"at": "2026-01-01T12:30:00Z"}).content.decode(), "downstream")
    bad = client.get(url, {"depth": "9"})
    assert bad.status_code == 400 and b"depth: Must be between 1 and 5." in bad.content
    htmx = client.get(url, {"direction": "upstream"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200 and b"<html" not in htmx.content and b"No upstream datasets" in htmx.content


def test_a_graph_larger_than_the_limit_says_it_shows_the_nearest_only(client, data_scientist, pipeline, settings):
    client = _login(client, data_scientist)
    url = f"/datasets/{ds('raw').pk}/lineage"
    assert "Only the nearest" not in client.get(url, {"direction": "downstream", "depth": "2"}).content.decode()
    settings.STEWARD_LINEAGE_DEFAULT_NODES = 2
    downstream = _section(client.get(url, {"direction": "downstream", "depth": "2"}).content.decode(), "downstream")
    assert "Only the nearest 2 datasets are shown" in downstream
    assert "clean" in downstream and ">summary</a>" not in downstream


# --- propagated tags and why ------------------------------------------------------------------------------


def test_dataset_page_shows_propagated_tag_with_source_and_a_working_why_link(client, data_scientist, pipeline):
    client = _login(client, data_scientist)
    page = client.get(f"/datasets/{ds('summary').pk}/").content.decode()
    assert f'href="/datasets/{ds("summary").pk}/lineage"' in page
    section = re.search(r'<section class="propagated".*?</section>', page, re.S).group(0)
    assert "pii.email" in section and f'<a href="/datasets/{ds("raw").pk}/">raw</a>' in section
    why = html.unescape(re.search(r'<a class="why" href="([^"]+)"', section).group(1))
    assert why == f"/datasets/{ds('summary').pk}/explain?tag=pii.email"
    explain = client.get(why)
    assert explain.status_code == 200
    text = explain.content.decode()
    hops = re.findall(r'<li class="hop">(.*?)</li>', text, re.S)
    assert len(hops) == 2
    assert "raw" in hops[0] and "load" in hops[0] and "clean" in hops[0]
    assert "clean" in hops[1] and "report" in hops[1] and "summary" in hops[1]
    # The source dataset's own page has no propagated tags.
    assert "No tags arrive through lineage." in client.get(f"/datasets/{ds('raw').pk}/").content.decode()


def test_a_column_tag_links_to_why_for_its_field(client, data_scientist, data_steward, tags):
    users = dataset("users", fields=["id", "email"])
    contacts = dataset("contacts", fields=["uid", "mail"], columns={"mail": [("users", "email")]})
    ingest(
        actor=make_producer(data_steward, NS, "etl"),
        events=[run_event("load", "COMPLETE", inputs=[users], outputs=[contacts])],
        batch=True,
    )
    drain()
    catalog.dataset_tag_add(actor=data_steward, dataset=ds("users"), key="pii.email", field_name="email")
    drain()
    client = _login(client, data_scientist)
    page = client.get(f"/datasets/{ds('contacts').pk}/").content.decode()
    section = re.search(r'<section class="propagated".*?</section>', page, re.S).group(0)
    assert "<code>mail</code>" in section and '<code class="field">.email</code>' in section
    why = html.unescape(re.search(r'<a class="why" href="([^"]+)"', section).group(1))
    assert why == f"/datasets/{ds('contacts').pk}/explain?tag=pii.email&field=mail"
    (hop,) = re.findall(r'<li class="hop">(.*?)</li>', client.get(why).content.decode(), re.S)
    assert re.search(
        r"users</a> <code class=\"field\">\.email</code>.*load.*contacts</a> <code class=\"field\">\.mail", hop, re.S
    )
    # With columns on, the graph the page draws has the column nodes.
    graph = client.get("/api/v1/lineage/graph", {"namespace": NS, "name": "contacts", "columns": "true"}).json()
    assert {n["name"] for n in graph["nodes"] if n["kind"] == "column"} == {"email", "mail"}


def test_explain_masks_hidden_datasets_in_the_path(client, data_scientist, admin_user, data_steward, pipeline):
    catalog.tag_create(actor=admin_user, key="secret.local", implied_level="C4", propagates=False)
    ingest(
        actor=make_producer(data_steward, NS, "etl"),
        events=[complete("publish", ["vault_copy"], ["outside"])],
        batch=True,
    )
    ingest(actor=make_producer(data_steward, NS, "etl"), events=[complete("copy", ["raw"], ["vault_copy"])], batch=True)
    drain()
    catalog.dataset_tag_add(actor=data_steward, dataset=ds("vault_copy"), key="secret.local", field_name=None)
    drain()
    assert ds("outside").effective_classification == "C3"  # pii.email came through; secret.local stays put
    text = _login(client, data_scientist).get(f"/datasets/{ds('outside').pk}/explain", {"tag": "pii.email"})
    hops = re.findall(r'<li class="hop">(.*?)</li>', text.content.decode(), re.S)
    assert [("hidden dataset" in h, "vault_copy" in h) for h in hops] == [(True, False), (True, False)]
    assert "raw" in hops[0] and "outside" in hops[1]
    assert (
        _login(client, data_steward)
        .get(f"/datasets/{ds('outside').pk}/explain", {"tag": "pii.email"})
        .content.count(b"vault_copy")
        == 2
    )


def test_explain_direct_and_unknown_tags(client, data_scientist, pipeline):
    client = _login(client, data_scientist)
    direct = client.get(f"/datasets/{ds('raw').pk}/explain", {"tag": "pii.email"})
    assert direct.status_code == 200 and b"set directly on this dataset" in direct.content
    missing = client.get(f"/datasets/{ds('summary').pk}/explain", {"tag": "finance"})
    assert missing.status_code == 404 and b"does not carry" in missing.content and b">404<" in missing.content


# --- declassifications -------------------------------------------------------------------------------------


def test_declassification_requested_and_approved_through_the_pages(client, privacy_officer, data_steward, pipeline):
    client = _login(client, privacy_officer)
    form = client.get("/declassifications/").content.decode()
    assert 'name="justification"' in form and '<option value="report">' in form
    res = client.post(
        "/declassifications/", {"job": "report", "tags": ["pii.email"], "justification": "Counts per region only"}
    )
    assert res.status_code == 302
    listing = client.get(res.url).content.decode()
    assert "Request sent" in listing and "Counts per region only" in listing and "pending" in listing
    assert "Approve" not in listing  # not a steward (and it is their own)
    decl = Declassification.objects.get()

    client = _login(client, data_steward)
    assert f"/declassifications/{decl.pk}/approve" in client.get("/declassifications/").content.decode()
    res = client.post(f"/declassifications/{decl.pk}/approve", {"reason": "k-anonymous"}, HTTP_HX_REQUEST="true")
    assert res.status_code == 200 and b"<html" not in res.content
    area = res.content.decode()
    assert "approved" in area and "stella" in area and "priya" in area and "k-anonymous" in area
    drain()
    assert not _carries("summary", "pii.email") and _carries("clean", "pii.email")
    page = client.get(f"/datasets/{ds('summary').pk}/").content.decode()
    assert "No tags arrive through lineage." in page
    listing = client.get("/declassifications/").content.decode()
    assert re.search(r'<span class="state">approved</span>', listing) and "/approve" not in listing


def test_a_steward_may_not_approve_their_own_request(client, data_steward, pipeline):
    decl = declassification_request(
        actor=data_steward, job_id=Job.objects.get(name="report").pk, tag_keys=["pii.email"], justification="mine"
    )
    client = _login(client, data_steward)
    assert f"/declassifications/{decl.pk}/approve" not in client.get("/declassifications/").content.decode()
    res = client.post(f"/declassifications/{decl.pk}/approve")
    assert res.status_code == 403
    assert re.search(
        r'class="error" role="alert"><strong class="status">403</strong> You may not decide your own',
        res.content.decode(),
    )
    htmx = client.post(f"/declassifications/{decl.pk}/approve", HTTP_HX_REQUEST="true")
    assert b">403<" in htmx.content and b"your own" in htmx.content
    decl.refresh_from_db()
    assert decl.state == "pending"
    drain()
    assert _carries("summary", "pii.email")


def test_steward_rejects_and_a_decided_request_cannot_be_decided_again(
    client, privacy_officer, data_steward, admin_user, pipeline
):
    decl = declassification_request(
        actor=privacy_officer, job_id=Job.objects.get(name="load").pk, tag_keys=["pii.email"], justification="x"
    )
    client = _login(client, admin_user)  # an admin is not a steward: cannot decide
    res = client.post(f"/declassifications/{decl.pk}/approve")
    assert res.status_code == 403 and b"Only a data steward" in res.content
    client = _login(client, data_steward)
    assert client.post(f"/declassifications/{decl.pk}/reject").status_code == 302
    again = client.post(f"/declassifications/{decl.pk}/approve")
    assert again.status_code == 409 and b"already rejected" in again.content
    assert client.post("/declassifications/00000000-0000-0000-0000-000000000000/approve").status_code == 404


def test_declassification_request_errors_are_shown(client, data_scientist, data_steward, pipeline):
    client = _login(client, data_scientist)
    page = client.get("/declassifications/").content.decode()
    assert 'name="justification"' not in page  # data scientists do not ask
    res = client.post("/declassifications/", {"job": "report", "tags": ["pii.email"], "justification": "x"})
    assert res.status_code == 403 and b">403<" in res.content
    client = _login(client, data_steward)
    res = client.post("/declassifications/", {"job": "nope", "tags": ["pii.email"], "justification": "x"})
    assert res.status_code == 400 and b"No job named" in res.content
    assert b'value="nope"' in res.content  # what was typed is kept
    res = client.post(
        "/declassifications/",
        {"job": "etl/report", "tags": ["pii.email"], "justification": " "},
        HTTP_HX_REQUEST="true",
    )
    assert res.status_code == 200 and b">400<" in res.content and b"justification" in res.content
    res = client.post("/declassifications/", {"job": "etl/report", "tags": ["pii.email"], "justification": "ok"})
    assert res.status_code == 302 and Declassification.objects.get().job.name == "report"
    assert not Declassification.objects.filter(state="approved").exists()


# --- every page needs a login; the static files are there ----------------------------------------------------


def test_anonymous_is_sent_to_login_from_every_lineage_page(client, pipeline, data_steward):
    decl = declassification_request(
        actor=data_steward, job_id=Job.objects.get(name="report").pk, tag_keys=["pii.email"], justification="x"
    )
    pk = ds("summary").pk
    for url in [f"/datasets/{pk}/lineage", f"/datasets/{pk}/explain?tag=pii.email", "/declassifications/"]:
        res = client.get(url)
        assert res.status_code == 302 and res.url.startswith("/accounts/login/"), url
    for url in ["/declassifications/", f"/declassifications/{decl.pk}/approve", f"/declassifications/{decl.pk}/reject"]:
        res = client.post(url, {"job": "report", "tags": ["pii.email"], "justification": "x"})
        assert res.status_code == 302 and res.url.startswith("/accounts/login/"), url
    decl.refresh_from_db()
    assert decl.state == "pending" and Declassification.objects.count() == 1


def test_nav_links_to_declassifications(client, data_scientist):
    assert b'href="/declassifications/"' in _login(client, data_scientist).get("/").content


def test_static_files_resolve():
    assert finders.find("vendor/cytoscape/cytoscape.min.js") is not None
    assert finders.find("vendor/htmx/htmx.min.js") is not None
    assert finders.find("frontend/lineage.js") is not None


def test_a_long_lineage_list_is_grouped_by_hop_with_only_the_nearest_hop_open(client, data_steward):
    """At hundreds of datasets the lists under the graph read as a few groups, not one page-high column."""
    fan = [f"fan_{i:02d}" for i in range(45)]
    ingest(
        actor=make_producer(data_steward, NS, "etl"),
        events=[complete("spread", ["hub"], ["mid"]), complete("fan", ["mid"], fan)],
        batch=True,
    )
    page = _login(client, data_steward).get(f"/datasets/{ds('hub').pk}/lineage?direction=downstream&depth=2")
    text = _section(page.content.decode(), "downstream")
    group = r'<details class="hop-group"( open)?>\s*<summary>(\d) hops? away.*?· (\d+) datasets?'
    groups = re.findall(group, text, re.S)
    assert groups == [(" open", "1", "1"), ("", "2", "45")]
    assert text.count("fan_") == 45 * 2  # every dataset is still listed (name and its lineage link title)


def test_a_short_lineage_list_shows_every_hop_open(client, pipeline, data_steward):
    page = _login(client, data_steward).get(f"/datasets/{ds('raw').pk}/lineage?direction=downstream&depth=2")
    text = _section(page.content.decode(), "downstream")
    assert text.count('<details class="hop-group" open>') == 2 and '<details class="hop-group">' not in text
