"""htmx helpers: a view answers an htmx request with a partial template (NetBox's pattern)."""

from django.http import HttpRequest


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"
