"""Verify Steward grant tokens offline against its JWKS, with pyjwt alone.

This module imports nothing from Django or Steward, so a data-plane proxy can copy it or import it without
configuring Steward: fetch ``/.well-known/jwks.json`` (cache it as its ``Cache-Control`` says, and fetch again
when a token names a ``kid`` the cached set lacks), then call :func:`verify_token` for each request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jwt

__all__ = ["ALGORITHMS", "DEFAULT_AUDIENCE", "REQUIRED_CLAIMS", "UnknownKeyError", "verify_token"]

ALGORITHMS = ["EdDSA"]
DEFAULT_AUDIENCE = "steward-dataplane"
REQUIRED_CLAIMS = ["iss", "sub", "aud", "grant_id", "asset", "iat", "nbf", "exp", "jti"]


class UnknownKeyError(jwt.InvalidTokenError):
    """The token names a key the JWKS does not hold (refetch the JWKS once; if still absent, reject)."""


def verify_token(
    token: str,
    jwks: Mapping[str, Any] | str | jwt.PyJWKSet,
    *,
    audience: str = DEFAULT_AUDIENCE,
    issuer: str | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    """Return the claims of a valid grant token; raise a ``jwt.InvalidTokenError`` subclass otherwise.

    Checks the EdDSA signature with the key named by the token's ``kid``, ``exp`` and ``nbf`` (with
    ``leeway`` seconds of clock skew; 0 keeps access inside the grant's window to the second), ``aud``,
    ``iss`` when given, and that every claim Steward issues is present. ``jwks`` is the JSON document (text
    or parsed) or a ``jwt.PyJWKSet``.
    """
    if isinstance(jwks, jwt.PyJWKSet):
        keys = jwks
    else:
        keys = jwt.PyJWKSet.from_dict(json.loads(jwks) if isinstance(jwks, str) else dict(jwks))
    kid = jwt.get_unverified_header(token).get("kid")
    try:
        # PyJWT matches a token without "kid" to a key without one; its annotation asks for a str.
        key = keys[kid]  # type: ignore[index]
    except KeyError:
        raise UnknownKeyError(f"no key {kid!r} in the JWKS") from None
    return jwt.decode(
        token,
        key=key,
        algorithms=ALGORITHMS,
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options={"require": REQUIRED_CLAIMS},
    )
