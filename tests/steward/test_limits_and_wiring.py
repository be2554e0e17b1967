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
    env = {
        **os.environ,
        "OIDC_RP_CLIENT_ID": "steward",
        "OIDC_OP_AUTHORIZATION_ENDPOINT": "http://127.0.0.1:9/auth",
        "OIDC_OP_TOKEN_ENDPOINT": "http://127.0.0.1:9/token",
        "OIDC_OP_USER_ENDPOINT": "http://127.0.0.1:9/me",
        "DJANGO_SETTINGS_MODULE": "steward.settings.base",
    }
    code = (
        "import django; django.setup();"
        "from django.conf import settings; from django.urls import reverse;"
        "print(settings.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'][-1]);"
        "print(settings.AUTHENTICATION_BACKENDS[0]); print(reverse('oidc_authentication_init'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "mozilla_django_oidc.contrib.drf.OIDCAuthentication",
        "accounts.oidc.StewardOIDCBackend",
        "/oidc/authenticate/",
    ]


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
