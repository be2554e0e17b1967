"""Short-lived signed grant tokens, the signing keys behind them, and the JWKS that publishes the public halves.

A data-plane proxy checks a token offline with the JWKS (``governance.token_verification.verify_token``).
Tokens live at most one hour and never past their grant's ``valid_until``. Keys rotate: a new key is
published (optionally ahead of use, so cached JWKS documents already hold it), the old one stops signing
and stays published until every token it signed has expired (``MAX_TOKEN_LIFETIME + RETIRED_KEY_GRACE``),
then it is deleted. Private keys are stored encrypted under a key derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from jwt.algorithms import OKPAlgorithm

from governance.actions import SIGNING_KEY_PURGE, SIGNING_KEY_ROTATE
from governance.models import SigningKey
from governance.token_verification import ALGORITHMS, verify_token
from ledger import audit
from steward.canonical import canonical_bytes
from steward.errors import Conflict, ValidationFailed
from steward.identity import Actor

__all__ = [
    "JWKS_MAX_AGE",
    "MAX_TOKEN_LIFETIME",
    "RETIRED_KEY_GRACE",
    "GrantHasNoTimeLeft",
    "issue_token",
    "jwks",
    "maintain",
    "purge_retired_keys",
    "key_in_force",
    "public_key_id",
    "rotate",
    "sign_document",
    "signing_keys_cached",
    "verify_token",
]

MAX_TOKEN_LIFETIME = timedelta(hours=1)
# A retired key stays published this long after its last token can have expired: covers verifiers' clock
# leeway and a token signed by a request that read the old key just before a rotation committed.
RETIRED_KEY_GRACE = timedelta(minutes=5)
# How long clients may cache the JWKS; a scheduled rotation publishes the next key this far ahead of use.
JWKS_MAX_AGE = 300
_PUBLIC_JWK_FIELDS = ("kty", "crv", "x", "kid", "alg", "use")


class GrantHasNoTimeLeft(Conflict):
    """The grant ends before a token could start: nothing to sign."""

    code = "grant_expired"


# --- tokens ---------------------------------------------------------------------------------------------


def issue_token(
    *,
    grant_id: UUID,
    subject: str,
    asset: str | Mapping[str, Any],
    grant_valid_until: datetime,
    now: datetime | None = None,
    lifetime: timedelta | None = None,
) -> tuple[str, datetime]:
    """Sign a token for one grant; returns it and its expiry (exactly the ``exp`` claim, whole seconds).

    Lifetime is ``min(lifetime or 1 h, 1 h, grant_valid_until - now)``, and ``exp`` is rounded down to the
    second so it never passes ``grant_valid_until``. Claims: ``iss``, ``aud`` (settings), ``sub``,
    ``grant_id``, ``asset`` (as given; must be JSON), ``iat`` = ``nbf`` = ``now`` in whole seconds, ``exp``,
    a random ``jti``. The caller (the grant service) checks the grant is in force and records the audit event.
    Raises ``GrantHasNoTimeLeft`` when the grant has less than a second left, ``ValidationFailed`` on a
    naive datetime or a non-positive lifetime. The first call ever creates the first signing key.
    """
    now = now or timezone.now()
    for field, value in (("now", now), ("grant_valid_until", grant_valid_until)):
        if timezone.is_naive(value):
            raise ValidationFailed.one(field, "Must include a time zone.", "naive_datetime")
    if lifetime is not None and lifetime <= timedelta(0):
        raise ValidationFailed.one("lifetime", "Must be positive.")
    issued_at = math.floor(now.timestamp())
    ends = min(now + min(lifetime or MAX_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME), grant_valid_until)
    expires = math.floor(ends.timestamp())
    if expires <= issued_at:
        raise GrantHasNoTimeLeft(
            f"Grant {grant_id} ends at {grant_valid_until.isoformat()}: no time left for a token.",
        )
    key = _signing_key(now)
    claims = {
        "iss": settings.STEWARD_JWT_ISSUER,
        "aud": settings.STEWARD_JWT_AUDIENCE,
        "sub": subject,
        "grant_id": str(grant_id),
        "asset": asset,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires,
        "jti": uuid.uuid4().hex,
    }
    private = _private_key(key.kid, key.private_key_encrypted)
    token = jwt.encode(claims, private, algorithm=ALGORITHMS[0], headers={"kid": key.kid})
    return token, datetime.fromtimestamp(expires, tz=UTC)


def jwks() -> dict[str, list[dict[str, str]]]:
    """The public keys a verifier needs: the signing key, any published ahead of use, retired ones not yet purged.

    Built field by field from the stored public JWK, so private parameters can never appear.
    """
    keys = SigningKey.objects.order_by("-signs_from").values_list("public_jwk", flat=True)
    return {"keys": [{f: jwk[f] for f in _PUBLIC_JWK_FIELDS if f in jwk} for jwk in keys]}


def sign_document(claims: Mapping[str, Any], *, typ: str, now: datetime | None = None) -> tuple[str, SigningKey]:
    """Sign ``claims`` (JSON) with the key in force as a compact JWS whose header ``typ`` names what it is.

    For statements other than grant tokens (audit checkpoints): a distinct ``typ`` and no ``aud``/``exp``
    mean a data-plane proxy never accepts one as a grant token. Returns the JWS and the key that signed it.
    """
    key = _signing_key(now or timezone.now())
    private = _private_key(key.kid, key.private_key_encrypted)
    token = jwt.encode(dict(claims), private, algorithm=ALGORITHMS[0], headers={"kid": key.kid, "typ": typ})
    return token, key


def key_in_force(now: datetime | None = None) -> SigningKey:
    """The key that signs at ``now``; the first call ever creates the first key (an audited rotation)."""
    return _signing_key(now or timezone.now())


def public_key_id(public_jwk: Mapping[str, str]) -> str:
    """The RFC 7638 thumbprint of a public OKP key: the ``kid`` Steward gives it."""
    return _thumbprint(public_jwk)


# --- keys -----------------------------------------------------------------------------------------------


@transaction.atomic
def rotate(
    *, actor: Actor | None = None, now: datetime | None = None, publish_ahead: timedelta = timedelta(0)
) -> SigningKey:
    """Create a new signing key that signs from ``now + publish_ahead``; every other key stops signing then.

    Retired keys stay in the JWKS until ``purge_retired_keys`` finds all their tokens expired. Use
    ``publish_ahead = JWKS_MAX_AGE`` for routine rotation (verifiers' cached JWKS already hold the new key when
    it starts signing) and no delay after a suspected compromise.
    """
    now = now or timezone.now()
    # Serialises concurrent rotations on the keys they retire.
    list(SigningKey.objects.select_for_update().filter(retired_at__isnull=True))
    starts = now + publish_ahead
    private = Ed25519PrivateKey.generate()
    public = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = _thumbprint(public)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = SigningKey.objects.create(
        kid=kid,
        algorithm=ALGORITHMS[0],
        public_jwk={**public, "kid": kid, "alg": ALGORITHMS[0], "use": "sig"},
        private_key_encrypted=_fernet().encrypt(pem).decode("ascii"),
        created_at=now,
        signs_from=starts,
    )
    superseded = SigningKey.objects.exclude(pk=kid).filter(Q(retired_at__isnull=True) | Q(retired_at__gt=starts))
    retired = sorted(superseded.values_list("kid", flat=True))
    superseded.update(retired_at=starts)
    audit.record(
        actor=actor,
        action=SIGNING_KEY_ROTATE,
        target=key,
        after={"kid": kid, "signs_from": starts.isoformat(), "retires": retired},
        at=now,
    )
    return key


@transaction.atomic
def purge_retired_keys(*, actor: Actor | None = None, now: datetime | None = None) -> list[str]:
    """Delete retired keys whose every token has expired (retired over 1 h + grace ago); returns their kids."""
    now = now or timezone.now()
    expired = SigningKey.objects.filter(retired_at__lte=now - MAX_TOKEN_LIFETIME - RETIRED_KEY_GRACE)
    kids = sorted(expired.values_list("kid", flat=True))
    if kids:
        expired.delete()
        audit.record_many(
            actor=actor,
            entries=[
                audit.AuditEntry(
                    action=SIGNING_KEY_PURGE,
                    target_type="governance.signingkey",
                    target_id=kid,
                    target_repr=kid,
                )
                for kid in kids
            ],
            at=now,
        )
    return kids


def maintain(*, now: datetime | None = None) -> dict[str, Any]:
    """The periodic job: purge expired retired keys, and rotate (publishing ``JWKS_MAX_AGE`` ahead) when the
    signing key is older than ``STEWARD_SIGNING_KEY_ROTATION_HOURS`` and no successor is scheduled yet.
    Creates the first key if there is none. Idempotent."""
    now = now or timezone.now()
    purged = purge_retired_keys(now=now)
    current = _key_at(now)
    scheduled = SigningKey.objects.filter(signs_from__gt=now, retired_at__isnull=True).exists()
    rotated = None
    if current is None and not scheduled:
        rotated = rotate(now=now).kid
    elif (
        current is not None
        and not scheduled
        and current.signs_from <= now - timedelta(hours=settings.STEWARD_SIGNING_KEY_ROTATION_HOURS)
    ):
        rotated = rotate(now=now, publish_ahead=timedelta(seconds=JWKS_MAX_AGE)).kid
    return {"rotated": rotated, "purged": purged}


# --- internals ------------------------------------------------------------------------------------------


_KEYS_CACHED: ContextVar[dict[datetime, SigningKey | None] | None] = ContextVar("signing_keys", default=None)


@contextmanager
def signing_keys_cached() -> Iterator[None]:
    """Inside: the key in force at one instant is looked up once (many tokens issued for the same ``now``, as a
    workspace reconcile pass does). Only for the duration of one such piece of work: a rotation or retirement
    committed meanwhile is seen by the next one."""
    token = _KEYS_CACHED.set({})
    try:
        yield
    finally:
        _KEYS_CACHED.reset(token)


def _key_at(at: datetime) -> SigningKey | None:
    cache = _KEYS_CACHED.get()
    if cache is not None and at in cache:
        return cache[at]
    in_force = Q(retired_at__isnull=True) | Q(retired_at__gt=at)
    key = SigningKey.objects.filter(in_force, signs_from__lte=at).order_by("-signs_from").first()
    if cache is not None and key is not None:
        cache[at] = key
    return key


def _signing_key(at: datetime) -> SigningKey:
    key = _key_at(at)
    if key is not None:
        return key
    if SigningKey.objects.exists():
        raise ImproperlyConfigured(f"No signing key is in force at {at.isoformat()}; run manage.py rotate_signing_keys")
    return rotate(now=at)


def _thumbprint(public_jwk: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint of an OKP key, base64url without padding."""
    members = {k: public_jwk[k] for k in ("crv", "kty", "x")}
    # RFC 7638 asks for exactly the canonical form (sorted members, no whitespace, UTF-8).
    digest = hashlib.sha256(canonical_bytes(members)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _fernet() -> MultiFernet:
    """Encrypts with a key derived from ``SECRET_KEY``; also decrypts with ``SECRET_KEY_FALLBACKS`` (rotation)."""
    secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(_derive(secret)) for secret in secrets_])


@lru_cache(maxsize=8)
def _derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"steward grant-token signing keys v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@lru_cache(maxsize=8)
def _private_key(kid: str, encrypted: str) -> Ed25519PrivateKey:
    try:
        pem = _fernet().decrypt(encrypted.encode("ascii"))
    except InvalidToken:
        raise ImproperlyConfigured(
            f"Signing key {kid} cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS; "
            "run manage.py rotate_signing_keys to start signing with a new key"
        ) from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"Signing key {kid} is not an Ed25519 key")
    return key
