"""Grant tokens: signed with rotating keys, verified offline against the published JWKS with pyjwt alone."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from governance.models import SigningKey
from governance.services import signing
from governance.services.signing import GrantHasNoTimeLeft, issue_token, rotate
from governance.tasks import signing_keys_maintain_task
from governance.token_verification import UnknownKeyError, verify_token
from ledger.models import AuditEvent
from steward.errors import ValidationFailed

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
ASSET = {"namespace": "postgres://warehouse:5432", "name": "sales.public.orders"}
PRIVATE_JWK_FIELDS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def token_for(valid_for: timedelta = timedelta(hours=3), now: datetime | None = None, **kwargs):
    now = now or datetime.now(UTC)
    grant_id = kwargs.pop("grant_id", uuid.uuid4())
    return issue_token(
        grant_id=grant_id, subject="dana", asset=ASSET, grant_valid_until=now + valid_for, now=now, **kwargs
    )


def published(client) -> dict:
    res = client.get("/.well-known/jwks.json")
    assert res.status_code == 200
    return json.loads(res.content)


def test_a_token_verifies_offline_against_the_published_jwks(client):
    grant_id = uuid.uuid4()
    token, expires_at = token_for(grant_id=grant_id)

    res = client.get("/.well-known/jwks.json")
    keyset = jwt.PyJWKSet.from_json(res.content.decode())
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token, keyset[header["kid"]], algorithms=["EdDSA"], audience="steward-dataplane", issuer="steward"
    )

    assert res["Cache-Control"] == f"public, max-age={signing.JWKS_MAX_AGE}" and res["ETag"]
    assert header["alg"] == "EdDSA"
    assert claims["sub"] == "dana" and claims["grant_id"] == str(grant_id) and claims["asset"] == ASSET
    assert claims["exp"] == int(expires_at.timestamp()) and claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) == 32
    assert verify_token(token, res.content.decode(), issuer="steward") == claims
    assert client.get("/.well-known/jwks.json", HTTP_IF_NONE_MATCH=res["ETag"]).status_code == 304


def test_the_jwks_is_public_and_never_holds_private_parameters(client, data_scientist):
    rotate()
    rotate(publish_ahead=timedelta(minutes=5))
    token_for()

    keys = published(client)["keys"]

    assert len(keys) == 2
    for key in keys:
        assert not PRIVATE_JWK_FIELDS & set(key), key
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    stored = SigningKey.objects.first()
    assert b"PRIVATE KEY" not in stored.private_key_encrypted.encode()
    assert "private" not in repr(stored) and stored.private_key_encrypted not in str(stored)


@pytest.mark.parametrize(
    ("grant_left", "requested", "lifetime"),
    [
        (timedelta(hours=3), None, timedelta(hours=1)),
        (timedelta(hours=3), timedelta(hours=2), timedelta(hours=1)),
        (timedelta(hours=3), timedelta(seconds=90), timedelta(seconds=90)),
        (timedelta(minutes=10, seconds=7), None, timedelta(minutes=10, seconds=7)),
        (timedelta(seconds=1), timedelta(hours=1), timedelta(seconds=1)),
    ],
)
def test_lifetime_is_capped_by_one_hour_and_by_the_grant_to_the_second(grant_left, requested, lifetime):
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    rotate(now=now - timedelta(minutes=1))

    token, expires_at = token_for(grant_left, now=now, lifetime=requested)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert expires_at == now + lifetime
    assert claims["exp"] - claims["iat"] == lifetime.total_seconds()
    assert claims["iat"] == int(now.timestamp())


def test_exp_never_passes_a_grant_ending_within_a_second():
    now = datetime(2026, 5, 1, 12, 0, 0, 400_000, tzinfo=UTC)
    rotate(now=now - timedelta(minutes=1))
    valid_until = datetime(2026, 5, 1, 12, 20, 5, 900_000, tzinfo=UTC)

    _, expires_at = issue_token(
        grant_id=uuid.uuid4(), subject="dana", asset="s3://b/x", grant_valid_until=valid_until, now=now
    )

    assert expires_at == datetime(2026, 5, 1, 12, 20, 5, tzinfo=UTC)
    with pytest.raises(GrantHasNoTimeLeft, match="no time left"):
        token_for(timedelta(milliseconds=500), now=now)


def test_a_grant_with_no_time_left_or_bad_input_gets_a_clear_error():
    now = datetime.now(UTC)
    for left in (timedelta(0), -timedelta(hours=1)):
        with pytest.raises(GrantHasNoTimeLeft) as exc:
            token_for(left, now=now)
        assert exc.value.status == 409 and exc.value.code == "grant_expired"
    with pytest.raises(ValidationFailed, match="lifetime"):
        token_for(lifetime=timedelta(0))
    with pytest.raises(ValidationFailed, match="grant_valid_until"):
        issue_token(grant_id=uuid.uuid4(), subject="d", asset="a", grant_valid_until=datetime(2030, 1, 1))  # noqa: DTZ001
    assert not SigningKey.objects.exists()


def test_an_expired_token_is_rejected(client):
    past = datetime.now(UTC) - timedelta(hours=2)
    rotate(now=past - timedelta(minutes=1))
    token, _ = token_for(now=past)

    with pytest.raises(jwt.ExpiredSignatureError):
        verify_token(token, published(client))


def test_a_tampered_or_foreign_token_fails(client):
    token, _ = token_for()
    jwks = published(client)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(f"{header}.{forged_payload}.{signature}", jwks)
    kid = jwt.get_unverified_header(token)["kid"]
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_token(unsigned, jwks)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_token(token, jwks, audience="another-service")
    with pytest.raises(jwt.InvalidIssuerError):
        verify_token(token, jwks, issuer="https://elsewhere")
    claims["sub"] = "dana"
    impostor = Ed25519PrivateKey.generate()
    with pytest.raises(jwt.InvalidSignatureError):  # another key claiming Steward's kid
        verify_token(jwt.encode(claims, impostor, algorithm="EdDSA", headers={"kid": kid}), jwks)
    with pytest.raises(UnknownKeyError):
        verify_token(jwt.encode(claims, impostor, algorithm="EdDSA", headers={"kid": "not-published"}), jwks)


def test_tokens_signed_before_a_rotation_verify_until_the_retired_key_is_purged(client):
    before, _ = token_for()
    old_kid = jwt.get_unverified_header(before)["kid"]

    new = rotate()
    after, _ = token_for()

    assert jwt.get_unverified_header(after)["kid"] == new.kid != old_kid
    jwks = published(client)
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new.kid}
    verify_token(before, jwks)
    verify_token(after, jwks)

    retired_at = SigningKey.objects.get(pk=old_kid).retired_at
    too_early = retired_at + signing.MAX_TOKEN_LIFETIME + signing.RETIRED_KEY_GRACE - timedelta(seconds=1)
    assert signing.purge_retired_keys(now=too_early) == []
    assert signing.purge_retired_keys(now=too_early + timedelta(seconds=1)) == [old_kid]

    jwks = published(client)
    assert [k["kid"] for k in jwks["keys"]] == [new.kid]
    with pytest.raises(UnknownKeyError):
        verify_token(before, jwks)
    verify_token(after, jwks)
    events = AuditEvent.objects.filter(action__startswith="governance.signing_key")
    assert list(events.values_list("action", flat=True)) == [
        "governance.signing_key.rotate",
        "governance.signing_key.rotate",
        "governance.signing_key.purge",
    ]


def test_a_key_published_ahead_is_in_the_jwks_before_it_signs():
    now = datetime.now(UTC)
    current = rotate(now=now - timedelta(days=1))
    upcoming = rotate(now=now, publish_ahead=timedelta(seconds=signing.JWKS_MAX_AGE))

    assert {k["kid"] for k in signing.jwks()["keys"]} == {current.kid, upcoming.kid}
    token, _ = token_for(now=now)
    assert jwt.get_unverified_header(token)["kid"] == current.kid
    later = now + timedelta(seconds=signing.JWKS_MAX_AGE)
    token, _ = token_for(now=later)
    assert jwt.get_unverified_header(token)["kid"] == upcoming.kid


def test_periodic_maintenance_rotates_when_due_and_purges(settings):
    settings.STEWARD_SIGNING_KEY_ROTATION_HOURS = 24
    now = datetime.now(UTC)

    first = signing.maintain(now=now - timedelta(days=3))
    assert first["rotated"] and first["purged"] == []
    assert signing.maintain(now=now - timedelta(days=2, hours=1)) == {"rotated": None, "purged": []}

    due = signing.maintain(now=now - timedelta(days=1))
    assert due["rotated"] and due["rotated"] != first["rotated"]
    assert signing.maintain(now=now - timedelta(days=1)) == {"rotated": None, "purged": []}

    result = signing_keys_maintain_task.delay().get()
    assert result["purged"] == [first["rotated"]]
    assert result["rotated"] is None
    assert SigningKey.objects.count() == 1


def test_rotate_signing_keys_command_starts_a_new_key_and_records_it():
    old = rotate()
    out = StringIO()

    call_command("rotate_signing_keys", stdout=out)

    new = SigningKey.objects.exclude(pk=old.pk).get()
    assert f"new signing key: {new.kid}" in out.getvalue()
    token, _ = token_for()
    assert jwt.get_unverified_header(token)["kid"] == new.kid
    event = AuditEvent.objects.filter(action="governance.signing_key.rotate").last()
    assert event.target_id == new.kid and event.after["retires"] == [old.kid]
    out = StringIO()
    call_command("rotate_signing_keys", "--if-due", stdout=out)
    assert "not due" in out.getvalue()


def test_private_keys_decrypt_only_with_the_secret_key(settings):
    key = rotate()
    original = settings.SECRET_KEY
    signing._private_key.cache_clear()
    settings.SECRET_KEY = "another-secret"
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        token_for()
    settings.SECRET_KEY_FALLBACKS = ["x", original]
    signing._private_key.cache_clear()
    token, _ = token_for()
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    signing._private_key.cache_clear()


@pytest.mark.slow
def test_the_signing_suite_passes_on_sqlite(tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("already running on SQLite")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "STEWARD_STATE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not sqlite"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout
