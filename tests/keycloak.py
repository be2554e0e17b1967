"""Drive the live Keycloak test server (scripts/services/keycloak.sh) the way a browser and its admin would."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.test import Client

STEWARD_HOST = "127.0.0.1:8000"  # a redirect URI the realm's `steward` client allows
PASSWORD = "steward-demo"
ADMIN_PASSWORD = "steward-admin"
_FORM = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.S)


class Browser(requests.Session):
    """A cookie-keeping HTTP client that, like a browser, treats http://127.0.0.1 and localhost as secure
    contexts: Keycloak's session cookies are ``Secure``, and browsers still send them to loopback over http."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(*args, **kwargs)
        for cookie in self.cookies:
            if cookie.domain in ("127.0.0.1", "localhost", "localhost.local"):
                cookie.secure = False
        return response


def base_url() -> str:
    return settings.OIDC_OP_ISSUER.split("/realms/")[0]


def token(issuer: str | None = None, **form: str) -> dict[str, Any]:
    """POST to the realm's token endpoint (``issuer`` chooses the host name the token is issued under)."""
    res = requests.post(f"{issuer or settings.OIDC_OP_ISSUER}/protocol/openid-connect/token", data=form, timeout=30)
    res.raise_for_status()
    return res.json()


def password_token(username: str, issuer: str | None = None) -> str:
    """A user's access token through the public `steward-cli` client (password grant)."""
    return token(issuer, grant_type="password", client_id="steward-cli", username=username, password=PASSWORD)[
        "access_token"
    ]


def client_credentials_token(client_id: str, secret: str) -> str:
    return token(grant_type="client_credentials", client_id=client_id, client_secret=secret)["access_token"]


def steward_client() -> Client:
    """A Django test client that presents itself as http://127.0.0.1:8000 (the realm's redirect URI)."""
    return Client(HTTP_HOST=STEWARD_HOST)


def login_form(browser: Browser, auth_url: str) -> str | None:
    """Open the authorization URL in the browser; the login form's action, or None if the IdP did not ask."""
    res = browser.get(auth_url, allow_redirects=False, timeout=30)
    if res.status_code in (302, 303):
        return None  # an SSO session answered straight away
    res.raise_for_status()
    match = _FORM.search(res.text)
    assert match, f"no Keycloak login form at {auth_url}: {res.text[:300]}"
    return html.unescape(match.group(1))


def browser_login(client: Client, username: str, browser: Browser | None = None) -> Browser:
    """Sign in to Steward through Keycloak's own login page: Steward → Keycloak form → Steward's callback."""
    browser = browser or Browser()
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302, start
    action = login_form(browser, start["Location"])
    if action is not None:
        res = browser.post(action, data={"username": username, "password": PASSWORD}, allow_redirects=False, timeout=30)
        assert res.status_code in (302, 303), f"Keycloak did not accept the login: {res.status_code} {res.text[:300]}"
        callback = res.headers["Location"]
    else:
        callback = browser.get(start["Location"], allow_redirects=False, timeout=30).headers["Location"]
    parts = urlsplit(callback)
    assert parts.netloc == STEWARD_HOST and parts.path == "/oidc/callback/", callback
    done = client.get(f"{parts.path}?{parts.query}")
    assert done.status_code == 302, done
    return browser


class Admin:
    """Keycloak's admin REST API (master realm admin of the loopback-only test server)."""

    def __init__(self) -> None:
        tok = requests.post(
            f"{base_url()}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": ADMIN_PASSWORD},
            timeout=30,
        )
        tok.raise_for_status()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
        self.realm = f"{base_url()}/admin/realms/{settings.OIDC_OP_ISSUER.rstrip('/').rsplit('/', 1)[-1]}"

    def call(self, method: str, path: str, **kw: Any) -> Any:
        res = self.http.request(method, f"{self.realm}{path}", timeout=30, **kw)
        res.raise_for_status()
        return res.json() if res.content else None

    def group_id(self, name: str) -> str:
        return next(g["id"] for g in self.call("GET", "/groups", params={"search": name}) if g["name"] == name)

    def user_id(self, username: str) -> str:
        return self.call("GET", "/users", params={"username": username, "exact": "true"})[0]["id"]

    def sessions(self, username: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/users/{self.user_id(username)}/sessions")

    @contextmanager
    def temporary_user(self, *groups: str) -> Iterator[str]:
        """A fresh user in the given groups (password ``steward-demo``), deleted afterwards."""
        username = f"tmp-{uuid.uuid4().hex[:10]}"
        self.call(
            "POST",
            "/users",
            json={
                "username": username,
                "enabled": True,
                "email": f"{username}@example.org",
                "emailVerified": True,
                "firstName": "Temp",
                "lastName": "User",
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
                "groups": [f"/{g}" for g in groups],
            },
        )
        try:
            yield username
        finally:
            self.call("DELETE", f"/users/{self.user_id(username)}")

    def leave_group(self, username: str, group: str) -> None:
        self.call("DELETE", f"/users/{self.user_id(username)}/groups/{self.group_id(group)}")
