"""Personal API tokens: shown once, stored hashed, revocable, expiring."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def _bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_token_authenticates_and_is_stored_only_as_a_digest(client_for, data_steward):
    res = client_for(data_steward).post("/api/v1/tokens", {"name": "ci"}, format="json")
    assert res.status_code == 201
    secret = res.json()["token"]
    assert secret.startswith("stw_")
    row = ApiToken.objects.get()
    assert secret not in (row.digest, row.prefix, row.name)
    me = _bearer(secret).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == "stella"
    assert "data-steward" in me.json()["roles"]
    listed = client_for(data_steward).get("/api/v1/tokens").json()["results"]
    assert "token" not in listed[0]


def test_revoked_token_stops_working(client_for, data_steward):
    client = client_for(data_steward)
    created = client.post("/api/v1/tokens", {"name": "ci"}, format="json").json()
    assert client.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    res = _bearer(created["token"]).get("/api/v1/me")
    assert res.status_code == 401
    assert "revoked" in res.json()["detail"]


def test_expired_token_is_refused(client_for, data_steward):
    created = (
        client_for(data_steward).post("/api/v1/tokens", {"name": "ci", "expires_in_days": 1}, format="json").json()
    )
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _bearer(created["token"]).get("/api/v1/me").status_code == 401


def test_wrong_token_is_401_and_others_tokens_are_404(client_for, data_steward, data_scientist):
    assert _bearer("stw_deadbeef_nope").get("/api/v1/me").status_code == 401
    created = client_for(data_steward).post("/api/v1/tokens", {"name": "ci"}, format="json").json()
    assert client_for(data_scientist).delete(f"/api/v1/tokens/{created['id']}").status_code == 404
    assert client_for(data_scientist).get("/api/v1/tokens").json()["results"] == []


def test_token_input_is_validated(client_for, data_steward):
    res = client_for(data_steward).post("/api/v1/tokens", {"name": "x", "expires_in_days": 9999}, format="json")
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "expires_in_days"
