"""Access pages as people use them: request (one dataset or a cart), my access, the approval inbox and a
request's page, approve/deny, grants on my datasets with revoke; the dataset page says what I hold."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from catalog import services as catalog
from governance.models import AccessRequest, Grant
from governance.services.access_requests import access_request_approve
from governance.services.signing import jwks
from governance.token_verification import verify_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(make_dataset, data_owner):
    """A C2 dataset (the owner approves) and a C3 one (owner and privacy officer), owned by olive's group."""
    return {
        "orders": make_dataset("sales.public.orders", owners=["group:sales-eng"], classification="C2"),
        "customers": make_dataset("sales.public.customers", owners=["group:sales-eng"], tags=["pii.email"]),
    }


def _as(client, user):
    client.force_login(user)
    return client


def _file(client, datasets, *, purpose="analytics", amount="2", unit="days", justification="Churn study Q3"):
    body = {"purpose": purpose, "duration_amount": amount, "duration_unit": unit, "justification": justification}
    if datasets is not None:
        body["dataset"] = [str(d.pk) for d in datasets]
    return client.post("/access/request", body)


def test_dataset_page_offers_request_and_the_form_shows_what_the_policy_asks(client, data_scientist, owned):
    client = _as(client, data_scientist)
    page = client.get(f"/datasets/{owned['customers'].pk}/").content.decode()
    assert "No access" in page and f"/access/request?dataset={owned['customers'].pk}" in page
    form = client.get("/access/request", {"dataset": owned["customers"].pk}).content.decode()
    assert "sales.public.customers" in form
    assert "at most 7 days (P7D)" in form, "the C3 maximum duration is shown"
    assert "owner of sales.public.customers" in form and "privacy officer" in form
    purposes = re.findall(r'<option value="([a-z-]+)"', form)
    assert "analytics" in purposes and "data-quality" not in purposes, "only purposes allowed at C3"


def test_request_then_standing_says_whom_it_awaits_and_my_access_lists_it(
    client, data_scientist, data_owner, owned, django_capture_on_commit_callbacks, settings
):
    settings.STEWARD_BASE_URL = "http://testserver.example"
    client = _as(client, data_scientist)
    with django_capture_on_commit_callbacks(execute=True):
        res = _file(client, [owned["orders"]])
    req = AccessRequest.objects.get()
    assert res.status_code == 302 and res.url == f"/access/requests/{req.pk}/"
    detail = client.get(res.url).content.decode()
    assert "Churn study Q3" in detail and "owner of sales.public.orders" in detail and "awaited" in detail
    page = client.get(f"/datasets/{owned['orders'].pk}/").content.decode()
    assert "Requested" in page and "awaiting owner of sales.public.orders" in page
    mine = client.get("/access/").content.decode()
    assert f'id="request-{req.pk}"' in mine and "Withdraw" in mine
    # The approver's e-mail links to the request's page on the configured base URL, not to API JSON.
    assert f"http://testserver.example/access/requests/{req.pk}/" in mail.outbox[-1].body


def test_search_results_offer_request_and_cart(client, data_scientist, owned):
    client = _as(client, data_scientist)
    page = client.get("/", {"q": "orders"}).content.decode()
    assert f"/access/request?dataset={owned['orders'].pk}" in page and "Add to cart" in page
    client.post("/access/cart/add", {"dataset": str(owned["orders"].pk), "next": "/?q=orders"})
    assert "sales.public.orders" in client.get("/access/request").content.decode()


def test_bad_input_is_shown_with_the_field_and_nothing_is_filed(client, data_scientist, owned):
    client = _as(client, data_scientist)
    too_long = _file(client, [owned["customers"]], amount="30", unit="days")
    assert too_long.status_code == 400 and "At most P7D for C3 data" in too_long.content.decode()
    no_reason = _file(client, [owned["orders"]], justification=" ")
    assert no_reason.status_code == 400 and "Say why you need this data" in no_reason.content.decode()
    assert AccessRequest.objects.count() == 0


def test_toxic_combination_is_refused_naming_the_tags(client, data_scientist, data_steward, make_dataset):
    catalog.tag_create(actor=data_steward, key="customer")
    catalog.tag_create(actor=data_steward, key="transactions.raw", implied_level="C2")
    people = make_dataset("crm.public.people", tags=["customer"])
    payments = make_dataset("pay.public.card_tx", tags=["transactions.raw"], owners=["stella"])
    client = _as(client, data_scientist)
    for ds in (people, payments):
        client.post("/access/cart/add", {"dataset": str(ds.pk)})
    cart = client.get("/access/request").content.decode()
    assert "crm.public.people" in cart and "pay.public.card_tx" in cart and "from your cart" in cart
    res = _file(client, None)
    page = res.content.decode()
    assert res.status_code == 409 and "customer-with-raw-transactions" in page
    assert "customer" in page and "transactions.raw" in page
    assert AccessRequest.objects.count() == 0


def test_cart_requests_several_datasets_at_once_and_empties(client, data_scientist, owned):
    client = _as(client, data_scientist)
    for ds in owned.values():
        client.post("/access/cart/add", {"dataset": str(ds.pk), "next": "https://evil.example/"})
    assert _file(client, None).status_code == 302
    assert {i.dataset.name for i in AccessRequest.objects.get().items.all()} == {
        "sales.public.orders",
        "sales.public.customers",
    }
    assert "No dataset chosen" in client.get("/access/request").content.decode()


def test_approver_inbox_count_approve_then_grant_shows_countdown_and_revoke(
    client, data_scientist, data_owner, owned, django_capture_on_commit_callbacks
):
    _file(_as(client, data_scientist), [owned["orders"]])
    req = AccessRequest.objects.get()
    client.logout()
    owner = _as(client, data_owner)
    home = owner.get("/").content.decode()
    assert re.search(r'id="nav-approvals">Approvals <span class="count-badge"[^>]*>1<', home)
    inbox = owner.get("/approvals/").content.decode()
    assert f"/access/requests/{req.pk}/" in inbox and "dana" in inbox
    page = owner.get(f"/access/requests/{req.pk}/").content.decode()
    assert "Your decision" in page and "sales.public.orders" in page
    with django_capture_on_commit_callbacks(execute=True):
        res = owner.post(f"/access/requests/{req.pk}/approve", {"comment": "ok for Q3"})
    assert res.status_code == 302
    done = owner.get(f"/access/requests/{req.pk}/").content.decode()
    assert "approved" in done and "olive" in done and "ok for Q3" in done
    assert "count-badge" not in owner.get("/approvals/").content.decode()
    managed = owner.get("/access/grants/").content.decode()
    grant = Grant.objects.get()
    assert f'id="grant-{grant.pk}"' in managed and "dana" in managed and "Revoke" in managed
    client.logout()
    scientist = _as(client, data_scientist)
    page = scientist.get(f"/datasets/{owned['orders'].pk}/").content.decode()
    assert "Granted" in page and re.search(r"1 d 23 h left|2 d 0 h left", page)
    assert re.search(r"(1 d 23 h|2 d 0 h) left", scientist.get("/access/").content.decode())
    client.logout()
    owner = _as(client, data_owner)
    assert owner.post(f"/access/grants/{grant.pk}/revoke", {"reason": " "}).status_code == 400
    assert owner.post(f"/access/grants/{grant.pk}/revoke", {"reason": "project over"}).status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoke_reason == "project over"
    client.logout()
    page = _as(client, data_scientist).get(f"/datasets/{owned['orders'].pk}/").content.decode()
    assert "No access" in page


def test_deny_needs_a_reason_and_outsiders_cannot_act(client, data_scientist, other_scientist, data_owner, owned):
    _file(_as(client, data_scientist), [owned["orders"]])
    req = AccessRequest.objects.get()
    client.logout()
    outsider = _as(client, other_scientist)
    assert outsider.get(f"/access/requests/{req.pk}/").status_code == 404
    assert outsider.post(f"/access/requests/{req.pk}/approve").status_code == 404
    client.logout()
    owner = _as(client, data_owner)
    no_reason = owner.post(f"/access/requests/{req.pk}/deny", {"reason": ""})
    assert no_reason.status_code == 400 and "Say why the request is denied" in no_reason.content.decode()
    assert owner.post(f"/access/requests/{req.pk}/deny", {"reason": "not needed"}).status_code == 302
    req.refresh_from_db()
    assert req.state == "denied" and req.decision_reason == "not needed"


def test_requester_withdraws_from_my_access(client, data_scientist, owned):
    client = _as(client, data_scientist)
    _file(client, [owned["orders"]])
    req = AccessRequest.objects.get()
    res = client.post(f"/access/requests/{req.pk}/withdraw", {"next": "/access/"})
    assert res.status_code == 302 and res.url == "/access/"
    req.refresh_from_db()
    assert req.state == "withdrawn"
    assert "No access" in client.get(f"/datasets/{owned['orders'].pk}/").content.decode()


def test_access_pages_need_login(client):
    for url in ["/access/", "/access/request", "/approvals/", "/access/grants/"]:
        res = client.get(url)
        assert res.status_code == 302 and res.url.startswith("/accounts/login/"), url


def test_holder_gets_a_token_once_and_unmanaged_datasets_have_no_login(
    client, data_scientist, other_scientist, data_owner, owned
):
    client = _as(client, data_scientist)
    _file(client, [owned["orders"]])
    access_request_approve(actor=data_owner, request=AccessRequest.objects.get())
    grant = Grant.objects.get()
    posted = client.post(f"/access/grants/{grant.pk}/token")
    assert posted.status_code == 302 and posted.url == "/access/", "Post/Redirect/Get: no secret in the POST answer"
    res = client.get(posted.url)
    assert res.status_code == 200 and res["Cache-Control"] == "no-store"
    token = re.search(r"<code>([\w-]+\.[\w-]+\.[\w-]+)</code>", res.content.decode()).group(1)
    assert verify_token(token, jwks())["grant_id"] == str(grant.pk)
    assert token not in client.get("/access/").content.decode(), "a reload of the page does not show it again"
    login = client.post(f"/access/grants/{grant.pk}/credentials")
    assert login.status_code == 400 and "not in a data plane" in login.content.decode()
    client.logout()
    assert _as(client, other_scientist).post(f"/access/grants/{grant.pk}/token").status_code == 404
