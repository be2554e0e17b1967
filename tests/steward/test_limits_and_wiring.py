"""Request limits, migrations in step with models, the committed OpenAPI file, OIDC switched on by settings."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_oversized_body_is_413_before_anything_is_read(client_for, data_steward, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"datasets": [' + ",".join(['{"namespace": "s3://b", "name": "x"}'] * 100) + "]}"
    res = client_for(data_steward).post("/api/v1/datasets/bulk", data=body, content_type="application/json")
    assert res.status_code == 413
    assert res.json()["errors"][0]["field"] == "body"
    assert "1000" in res.json()["detail"]


def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", check=True, dry_run=True, stdout=out)


def test_committed_openapi_schema_matches_the_code(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", file=str(generated), validate=True)
    committed = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    assert yaml.safe_load(generated.read_text()) == committed, "run `make schema` and commit docs/openapi.yaml"


def test_oidc_is_switched_on_by_its_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    env.update(
        {
            "OIDC_RP_CLIENT_ID": "steward",
            "OIDC_OP_ISSUER": "http://127.0.0.1:9/realms/r",
            "OIDC_OP_USER_ENDPOINT": "http://127.0.0.1:9/me",
            "DJANGO_SETTINGS_MODULE": "steward.settings.base",
        }
    )
    code = (
        "import django; django.setup();"
        "from django.conf import settings as s; from django.urls import reverse;"
        "print(s.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'][1]);"
        "print([b for b in s.AUTHENTICATION_BACKENDS if 'oidc' in b][0]); print(reverse('oidc_authentication_init'));"
        "print(s.OIDC_OP_AUTHORIZATION_ENDPOINT, s.OIDC_OP_JWKS_ENDPOINT);"
        "print(s.OIDC_OP_LOGOUT_ENDPOINT, s.OIDC_OP_USER_ENDPOINT);"
        "print(s.STEWARD_OIDC_AUDIENCE, s.OIDC_USE_PKCE)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    kc = "http://127.0.0.1:9/realms/r/protocol/openid-connect"
    assert out.stdout.split() == [
        "accounts.sso.OIDCBearerAuthentication",
        "accounts.oidc.StewardOIDCBackend",
        "/oidc/authenticate/",
        f"{kc}/auth",
        f"{kc}/certs",
        f"{kc}/logout",
        "http://127.0.0.1:9/me",
        "steward",
        "True",
    ]


def test_local_login_only_without_oidc_settings(client, settings):
    settings.OIDC_OP_JWKS_ENDPOINT = ""
    res = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    assert res.status_code == 401  # not authenticated, and no provider asked

    env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    env["DJANGO_SETTINGS_MODULE"] = "steward.settings.base"
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.OIDC_ENABLED, s.AUTHENTICATION_BACKENDS, s.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("False [") and "oidc" not in out.stdout.split("]")[0]


def test_oidc_login_maps_the_roles_claim_to_groups(db):
    from accounts.oidc import StewardOIDCBackend
    from steward.identity import Role, roles_of

    backend = StewardOIDCBackend()
    claims = {"preferred_username": "olga", "email": "olga@example.org", "groups": ["/data-steward", "unrelated"]}
    user = backend.create_user(claims)
    assert roles_of(user) == {Role.DATA_SCIENTIST, Role.DATA_STEWARD}
    user = type(user).objects.get(pk=user.pk)
    backend.update_user(user, {**claims, "groups": ["privacy-officer"]})
    user = type(user).objects.get(pk=user.pk)
    assert roles_of(user) == {Role.DATA_SCIENTIST, Role.PRIVACY_OFFICER}
