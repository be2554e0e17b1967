"""Web defences: login lockout (django-axes), a Content-Security-Policy on every page, and the TLS settings
(secure cookies, HSTS, the proxy's TLS header) read from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings

from tests.conftest import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def login(client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_wrong_passwords_lock_the_login_even_for_the_right_password(client):
    make_user("dana")
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert login(client, "dana", "guess").status_code == 200  # the form again, with its error
    locked = login(client, "dana", "guess")
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    right = login(client, "dana", "pw-dana")
    assert right.status_code == 429, "the right password after the limit is refused too"
    assert "_auth_user_id" not in client.session
    attempt = AccessAttempt.objects.get(username="dana")
    assert "guess" not in attempt.post_data, "the tried passwords are not stored"


def test_the_lock_is_per_login_and_a_success_resets_the_count(client):
    make_user("dana")
    make_user("oscar")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "dana", "guess")
    assert login(client, "dana", "pw-dana").status_code == 302  # one short of the limit: still in
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "dana", "guess").status_code == 200, "a success started the count again"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "oscar", "guess")
    assert login(client, "oscar", "pw-oscar").status_code == 429
    assert login(client, "dana", "pw-dana").status_code == 302, "oscar's lock is not dana's"


def test_the_admin_login_is_locked_too(client):
    make_user("ada")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "ada", "password": "guess"})
    assert client.post("/admin/login/", {"username": "ada", "password": "pw-ada"}).status_code == 429


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/datasets", "/api/v1/datasets", "/api/docs/", "/healthz"])
def test_every_page_has_a_content_security_policy_without_inline_code(client, path, data_scientist):
    client.force_login(data_scientist)
    res = client.get(path, follow=True)
    policy = dict(part.strip().split(" ", 1) for part in res["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'"
    # Swagger UI's page has one inline <style> block: only that page allows inline styles.
    assert policy["style-src"] == ("'self' 'unsafe-inline'" if path == "/api/docs/" else "'self'")
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    if res["Content-Type"].startswith("text/html"):
        html = res.content.decode()
        # Every script is a file (allowed by 'self'); an inline one would be blocked by the browser.
        for chunk in html.split("<script")[1:]:
            assert chunk.split(">", 1)[0].count("src=") == 1, f"inline script on {path}"
        assert " on" + "click=" not in html
        assert "<style" not in html or path == "/api/docs/"


def test_htmx_is_told_not_to_inject_its_inline_styles(client, data_scientist):
    client.force_login(data_scientist)
    html = client.get("/").content.decode()
    config = html.split('name="htmx-config" content=\'')[1].split("'")[0]
    assert json.loads(config)["includeIndicatorStyles"] is False


def run_with_env(env: dict[str, str], code: str) -> dict:
    """Run ``code`` in a fresh process whose environment holds ``env`` (settings are read once, at start)."""
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "steward.settings.test", "PYTHONPATH": str(ROOT), **env}
    prelude = "import django, json; django.setup()\nfrom django.conf import settings\nfrom django.test import Client\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], env=full, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_behind_a_tls_proxy_cookies_are_secure_and_hsts_is_sent():
    code = (
        "res = Client().get('/accounts/login/', HTTP_X_FORWARDED_PROTO='https')\n"
        "plain = Client().get('/healthz')\n"
        "print(json.dumps({'hsts': res.get('Strict-Transport-Security'), 'csrf_secure': "
        "bool(res.cookies['csrftoken']['secure']), 'session_secure': settings.SESSION_COOKIE_SECURE, "
        "'plain': plain.status_code, 'plain_hsts': plain.get('Strict-Transport-Security')}))"
    )
    on = run_with_env(
        {
            "STEWARD_BEHIND_TLS_PROXY": "1",
            "STEWARD_SECURE_COOKIES": "1",
            "STEWARD_HSTS_SECONDS": "31536000",
            "STEWARD_HSTS_INCLUDE_SUBDOMAINS": "1",
            "STEWARD_SSL_REDIRECT": "1",
        },
        code,
    )
    assert on == {
        "hsts": "max-age=31536000; includeSubDomains",
        "csrf_secure": True,
        "session_secure": True,
        "plain": 200,  # health checks are exempt from the HTTPS redirect
        "plain_hsts": None,  # HSTS only on HTTPS responses
    }
    off = run_with_env({}, code)
    assert off["hsts"] is None and off["csrf_secure"] is False and off["session_secure"] is False


def test_the_api_docs_load_their_script_from_a_file(client, data_scientist):
    client.force_login(data_scientist)
    html = client.get("/api/docs/").content.decode()
    sources = [chunk.split('src="', 1)[1].split('"', 1)[0] for chunk in html.split("<script")[1:]]
    own = [src for src in sources if src.startswith("/api/docs/")]
    assert own, sources
    script = client.get(own[0].replace("&amp;", "&"))
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
