"""The API's only request parser: JSON through ``steward.jsonbody`` (depth, lone surrogates, NaN refused as 400s)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from steward.jsonbody import MalformedBody, loads

__all__ = ["StewardJSONParser"]


class StewardJSONParser(JSONParser):
    """``application/json`` bodies; anything the shared parser refuses is a 400 naming the place in the body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        if encoding.lower().replace("-", "") not in ("utf8", "ascii", "usascii"):
            try:
                raw = raw.decode(encoding).encode("utf-8", "surrogatepass")
            except (LookupError, UnicodeDecodeError) as exc:
                raise MalformedBody.one("body", f"The body is not {encoding} text: {exc}", "parse_error") from None
        return loads(raw)
