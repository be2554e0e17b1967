"""Single sign-on against the live Keycloak test server: browser login with PKCE, roles from groups on every
login, logout that ends the Keycloak session, bearer access tokens checked against the realm's JWKS, and
service accounts (client credentials)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.contrib.auth.models import User

from steward.identity import Role, roles_of
from tests import keycloak as kc

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keycloak_issuer")]


def me(client) -> dict:
    res = client.get("/api/v1/me")
    assert res.status_code == 200, res.content
    return res.json()


def bearer(client, token: str, path: str = "/api/v1/me"):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_browser_login_through_keycloak_uses_pkce_and_maps_groups_to_roles():
    client = kc.steward_client()
    start = client.get("/oidc/authenticate/")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith("http://127.0.0.1:58080/realms/steward/protocol/openid-connect/auth")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43

    kc.browser_login(client, "olive")
    body = me(client)
    assert body["username"] == "olive" and body["email"] == "olive@example.org"
    assert set(body["roles"]) == {Role.DATA_OWNER, Role.DATA_SCIENTIST}


def test_keycloak_refuses_the_steward_client_without_pkce():
    """The realm requires S256 PKCE for `steward`: an authorization request without a challenge is refused."""
    res = requests.get(
        f"{kc.base_url()}/realms/steward/protocol/openid-connect/auth",
        params={
            "client_id": "steward",
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "http://127.0.0.1:8000/oidc/callback/",
            "state": "s",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert res.status_code == 302
    assert "error=invalid_request" in res.headers["Location"] and "code_challenge" in res.headers["Location"]


def test_a_user_removed_from_a_group_loses_the_role_at_the_next_login():
    admin = kc.Admin()
    with admin.temporary_user("data-steward", "privacy-officer") as username:
        client = kc.steward_client()
        kc.browser_login(client, username)
        assert set(me(client)["roles"]) == {Role.DATA_STEWARD, Role.PRIVACY_OFFICER, Role.DATA_SCIENTIST}

        admin.leave_group(username, "data-steward")
        client.post("/accounts/logout/")
        kc.browser_login(kc.steward_client(), username)  # a fresh browser: the SSO session is gone anyway
        user = User.objects.get(username=username)
        assert roles_of(user) == {Role.PRIVACY_OFFICER, Role.DATA_SCIENTIST}
        assert not user.groups.filter(name=Role.DATA_STEWARD).exists()


def test_logout_ends_the_keycloak_session_too():
    admin = kc.Admin()
    with admin.temporary_user("data-scientist") as username:
        client = kc.steward_client()
        browser = kc.browser_login(client, username)
        assert len(admin.sessions(username)) == 1

        res = client.post("/accounts/logout/")
        assert res.status_code == 302
        target = urlsplit(res["Location"])
        assert res["Location"].startswith("http://127.0.0.1:58080/realms/steward/protocol/openid-connect/logout")
        assert parse_qs(target.query)["post_logout_redirect_uri"] == ["http://127.0.0.1:8000/accounts/login/"]
        assert client.get("/api/v1/me").status_code in (401, 403)  # Steward's session is over

        back = browser.get(res["Location"], allow_redirects=False, timeout=30)  # the browser follows it
        assert back.status_code == 302 and back.headers["Location"] == "http://127.0.0.1:8000/accounts/login/"
        assert admin.sessions(username) == []
        # Signing in again asks for the password: no single sign-on session is left at Keycloak.
        again = kc.steward_client().get("/oidc/authenticate/")
        assert kc.login_form(browser, again["Location"]) is not None


def test_a_local_login_logs_out_locally(client):
    client.force_login(User.objects.create_user("lou", password="pw-lou-local"))
    res = client.post("/accounts/logout/")
    assert res.status_code == 302 and res["Location"] == "http://testserver/accounts/login/"


# --- Bearer access tokens -------------------------------------------------------------------------------


def test_a_valid_keycloak_access_token_is_accepted_and_maps_groups(client):
    body = bearer(client, kc.password_token("stella")).json()
    assert body["username"] == "stella"
    assert set(body["roles"]) == {Role.DATA_STEWARD, Role.DATA_SCIENTIST}


def test_an_expired_access_token_is_refused(client):
    token = kc.password_token("stella")
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    assert bearer(client, token).status_code == 200
    with time_machine.travel(datetime.fromtimestamp(exp, tz=UTC) + timedelta(minutes=5)):
        res = bearer(client, token)
    assert res.status_code == 401
    assert "expired" in res.json()["detail"]


def test_a_token_for_another_audience_is_refused(client):
    token = kc.client_credentials_token("other-app", "other-app-secret")  # same realm, no `steward` audience
    res = bearer(client, token)
    assert res.status_code == 401
    assert "audience" in res.json()["detail"]
    assert not User.objects.filter(username="service-account-other-app").exists()


def test_a_token_from_another_issuer_is_refused(client):
    # Same realm and signing key, reached under another host name: Keycloak puts that host in `iss`.
    token = kc.password_token("stella", issuer="http://localhost:58080/realms/steward")
    res = bearer(client, token)
    assert res.status_code == 401
    assert "issued" in res.json()["detail"]


def test_a_tampered_token_is_refused(client):
    header, payload, signature = kc.password_token("dana").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["groups"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    res = bearer(client, f"{header}.{forged}.{signature}")
    assert res.status_code == 401
    assert "signature" in res.json()["detail"]
    assert not User.objects.filter(username="dana", groups__name="admin").exists()


def test_an_id_token_is_not_an_access_token(client):
    browser_client = kc.steward_client()
    kc.browser_login(browser_client, "stella")
    id_token = browser_client.session["oidc_id_token"]  # signed by the realm, audience `steward`
    res = bearer(client, id_token)
    assert res.status_code == 401
    assert res.json()["detail"] == "The bearer token is not an access token."


def test_a_token_that_is_not_a_jwt_is_refused(client):
    res = bearer(client, "not-a-jwt")
    assert res.status_code == 401
    assert res["WWW-Authenticate"] == 'Bearer realm="steward"'


def test_roles_follow_the_groups_of_each_token(client):
    admin = kc.Admin()
    with admin.temporary_user("compliance-officer") as username:
        assert Role.COMPLIANCE_OFFICER in bearer(client, kc.password_token(username)).json()["roles"]
        admin.leave_group(username, "compliance-officer")
        assert bearer(client, kc.password_token(username)).json()["roles"] == [Role.DATA_SCIENTIST]


def test_a_service_account_gets_the_service_and_lineage_producer_roles(client, settings):
    token = kc.client_credentials_token("steward-producer", "steward-producer-secret")
    body = bearer(client, token).json()
    assert body["username"] == "service-account-steward-producer"
    assert Role.SERVICE in body["roles"]
    assert {"service", "lineage-producer"} <= set(body["groups"])
    # `service` may ask the decision API about any subject.
    res = client.post(
        "/api/v1/authorize",
        {"subject": "dana", "action": "read", "asset": {"namespace": "s3://nowhere", "name": "none"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert res.status_code == 200, res.content


def test_the_group_to_role_mapping_is_a_setting(client, settings):
    settings.STEWARD_OIDC_GROUP_ROLES = {"sales-eng": Role.DATA_STEWARD}
    body = bearer(client, kc.password_token("olive")).json()
    assert Role.DATA_STEWARD in body["roles"]
