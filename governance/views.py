"""Public, unauthenticated endpoints of governance: the JWKS that data-plane proxies verify grant tokens with."""

from __future__ import annotations

import hashlib

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_GET

from governance.services.signing import JWKS_MAX_AGE, jwks
from steward.canonical import canonical_bytes

__all__ = ["jwks_view"]


@require_GET
def jwks_view(request: HttpRequest) -> HttpResponse:
    """``GET /.well-known/jwks.json``: the public signing keys, cacheable for ``JWKS_MAX_AGE`` seconds, with an ETag."""
    body = canonical_bytes(jwks())
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response["Access-Control-Allow-Origin"] = "*"
    return response
