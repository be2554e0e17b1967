"""The web UI as a person uses it: login, search with facets, asset pages, tagging, tokens."""

import re

import pytest

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(make_dataset):
    make_dataset(
        "sales.public.orders",
        description="Orders placed online",
        fields=[{"name": "order_id", "type": "bigint"}, {"name": "email", "tags": ["pii.email"]}],
    )
    make_dataset("events.orders_stream", namespace="kafka://broker:9092")
    return make_dataset("hr.salaries", tags=["secret.source"], owners=["group:admin"])


def _login(client, user):
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_login(client):
    for url in ["/", "/datasets/", "/models/", "/tags/", "/tokens/"]:
        res = client.get(url)
        assert res.status_code == 302 and res.url.startswith("/accounts/login/"), url
    assert b"Log in" in client.get("/accounts/login/").content


def test_login_with_password_lands_on_search(client, data_scientist):
    res = client.post("/accounts/login/", {"username": "dana", "password": "pw-dana"}, follow=True)
    assert res.status_code == 200
    assert b"Search datasets" in res.content


def test_search_shows_ranked_hits_and_facet_counts(client, data_scientist, corpus):
    page = _login(client, data_scientist).get("/", {"q": "orders"}).content.decode()
    assert page.index("sales.public.orders") < page.index("events.orders_stream")
    assert re.search(r"postgres</span>\s*<span class=\"count\">1<", page)
    assert re.search(r"kafka</span>\s*<span class=\"count\">1<", page)
    assert "1–2 of 2 results" in page


def test_facet_link_filters(client, data_scientist, corpus):
    page = _login(client, data_scientist).get("/", {"q": "orders", "platform": "kafka"}).content.decode()
    assert "events.orders_stream" in page and "sales.public.orders" not in page


def test_htmx_request_gets_only_the_results_partial(client, data_scientist, corpus):
    res = _login(client, data_scientist).get("/", {"q": "orders"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in res.content and b"sales.public.orders" in res.content


def test_typeahead_suggests_names(client, data_scientist, corpus):
    res = _login(client, data_scientist).get("/search/suggest", {"q": "sal"})
    assert b"sales.public.orders" in res.content and b"hr.salaries" not in res.content


def test_hidden_dataset_is_absent_and_its_page_404s_for_non_holders(client, data_scientist, corpus):
    client = _login(client, data_scientist)
    assert b"hr.salaries" not in client.get("/", {"q": "salaries"}).content
    assert client.get(f"/datasets/{corpus.pk}/").status_code == 404
    assert b"hr.salaries" not in client.get("/datasets/").content


def test_privileged_reader_sees_hidden_dataset_page(client, compliance_officer, corpus):
    res = _login(client, compliance_officer).get(f"/datasets/{corpus.pk}/")
    assert res.status_code == 200 and b"hr.salaries" in res.content and b"secret.source" in res.content


def test_dataset_page_shows_schema_and_levels(client, data_scientist, corpus):
    from catalog.models import Dataset

    ds = Dataset.objects.get(name="sales.public.orders")
    page = _login(client, data_scientist).get(f"/datasets/{ds.pk}/").content.decode()
    assert "order_id" in page and "bigint" in page and "pii.email" in page
    assert 'class="level level-c3"' in page
    assert "Add tag" not in page  # a data scientist may not tag


def test_steward_tags_and_untags_through_the_page(client, data_steward, corpus):
    from catalog.models import Dataset

    ds = Dataset.objects.get(name="sales.public.orders")
    client = _login(client, data_steward)
    res = client.post(f"/datasets/{ds.pk}/tags/add", {"key": "finance", "field": ""}, HTTP_HX_REQUEST="true")
    assert res.status_code == 200 and b"finance" in res.content and b"<html" not in res.content
    assert ds.tag_assignments.filter(tag__key="finance", field__isnull=True).exists()
    res = client.post(f"/datasets/{ds.pk}/tags/add", {"key": "secret.source", "field": "order_id"})
    assert res.status_code == 302
    ds.refresh_from_db()
    assert ds.effective_classification == "C4"
    client.post(f"/datasets/{ds.pk}/tags/remove", {"key": "secret.source", "field": "order_id"})
    ds.refresh_from_db()
    assert ds.effective_classification == "C3"


def test_data_scientist_cannot_tag_through_the_page(client, data_scientist, corpus):
    from catalog.models import Dataset

    ds = Dataset.objects.get(name="sales.public.orders")
    res = _login(client, data_scientist).post(f"/datasets/{ds.pk}/tags/add", {"key": "finance"})
    assert res.status_code == 403
    assert b"may not tag" in res.content
    assert not ds.tag_assignments.filter(tag__key="finance").exists()


def test_token_page_shows_the_secret_once(client, data_scientist):
    client = _login(client, data_scientist)
    res = client.post("/tokens/", {"name": "laptop", "expires_in_days": "30"})
    assert res.status_code == 302 and res.url == "/tokens/", "Post/Redirect/Get: the POST answer carries no secret"
    assert b"stw_" not in res.content
    shown = client.get("/tokens/")
    assert shown["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-token">(stw_[^<]+)<', shown.content.decode()).group(1)
    assert ApiToken.objects.get().name == "laptop"
    again = client.get("/tokens/").content.decode()
    assert secret not in again and "laptop" in again, "a reload does not show it again"
    token = ApiToken.objects.get()
    client.post(f"/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_models_and_tags_pages(client, data_scientist, tags):
    from catalog import services

    model = services.model_create(actor=data_scientist, name="churn", description="Who leaves")
    services.model_version_create(
        actor=data_scientist, model=model, version="1", artifact_uri="s3://m/1", framework="sklearn", stage="production"
    )
    client = _login(client, data_scientist)
    assert b"churn" in client.get("/models/").content
    detail = client.get(f"/models/{model.pk}/").content
    assert b"s3://m/1" in detail and b"production" in detail
    assert b"pii.email" in client.get("/tags/").content


def test_a_page_past_the_end_says_so_and_links_back(client, data_scientist, corpus):
    page = _login(client, data_scientist).get("/", {"q": "orders", "offset": "500"}).content.decode()
    assert "Past the last page: there are 2 results" in page
    assert "501–500" not in page and "Nothing matches" not in page
    assert 'href="?q=orders"' in page


def test_a_corrected_query_says_what_it_searched_for(client, data_scientist, corpus):
    page = _login(client, data_scientist).get("/", {"q": "ordres"}).content.decode()
    assert "sales.public.orders" in page
    assert re.search(r'showing results for <strong class="corrected">orders?</strong>', page)
    exact = client.get("/", {"q": "orders"}).content.decode()
    assert "showing results for" not in exact


def test_dataset_list_pages_by_keys_and_caps_its_count(client, data_scientist, make_dataset, monkeypatch):
    """The list pages forward and back by (name, namespace), keeps the filters, and stops counting at a cap,
    saying so."""
    from catalog import selectors

    for n in range(7):
        make_dataset(f"zz.list_{n}")
    monkeypatch.setattr(selectors, "DATASET_COUNT_CAP", 5)
    monkeypatch.setattr(selectors, "DATASET_PAGE_SIZE", 3)
    client = _login(client, data_scientist)

    def names(html: str) -> list[str]:
        return re.findall(r">zz\.list_(\d)<", html)

    def follow(html: str, rel: str) -> str:
        link = re.search(rf'href="(\?[^"]*)" rel="{rel}"', html).group(1).replace("&amp;", "&")
        assert "platform=postgres" in link
        return client.get("/datasets/" + link).content.decode()

    first = client.get("/datasets/", {"platform": "postgres"}).content.decode()
    assert "More than 5 datasets" in first and 'rel="prev"' not in first
    second = follow(first, "next")
    last = follow(second, "next")
    assert [names(first), names(second), names(last)] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert 'rel="next"' not in last
    assert names(follow(last, "prev")) == ["3", "4", "5"]
    assert names(follow(second, "prev")) == ["0", "1", "2"]
    monkeypatch.setattr(selectors, "DATASET_COUNT_CAP", 1000)
    assert "7 datasets" in client.get("/datasets/", {"platform": "postgres"}).content.decode()
    # A stale or hand-edited key shows the first page, not an error.
    assert names(client.get("/datasets/", {"after": "not-a-key", "platform": "postgres"}).content.decode())[0] == "0"
