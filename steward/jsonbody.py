"""The one JSON body parser: DRF's parser (``steward.api.parsers``), gzip lineage bodies and the decision fast path.

Beyond ``json.loads`` it refuses, each as a 400 naming the place: a body nested deeper than ``MAX_DEPTH`` (Python's
parser raises ``RecursionError`` near 1,000 levels, and deep values break later code and PostgreSQL ``jsonb``),
a string holding a lone UTF-16 surrogate (``"a\\ud800b"``, which no UTF-8 text, and so no database, can store)
or NUL (``\\u0000``, which PostgreSQL ``text`` and ``jsonb`` cannot hold),
and ``NaN``/``Infinity`` (not JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any

from steward.errors import ValidationFailed

__all__ = ["MAX_DEPTH", "MalformedBody", "loads"]


class MalformedBody(ValidationFailed):
    """A request body that is not acceptable JSON (code ``parse_error``, as DRF's own parse errors)."""

    code = "parse_error"


# Deeper than any document the API takes (OpenLineage facets included), far below the interpreter's limit.
MAX_DEPTH = 64

_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_QUOTED = re.compile(rb'"[^"]*"')
_PARENS = bytes.maketrans(b"[]{}", b"()()")
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(raw: bytes) -> bool:
    """Whether the brackets of ``raw`` (outside strings) nest deeper than ``MAX_DEPTH``, in a few C-level passes:
    escapes and everything but quotes and brackets are dropped, then the strings, then matched pairs one level
    per round."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    reduced = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _STRUCTURE)
    # A string without brackets is ``""`` by now (or, beside another, ``""""``): gone in one C pass, which leaves
    # the expression only the strings that hold brackets (a third of a batch of decisions' parse time before).
    reduced = reduced.replace(b'""', b"")
    nesting = (_QUOTED.sub(b"", reduced) if b'"' in reduced else reduced).translate(_PARENS)
    for _ in range(MAX_DEPTH):
        if b"()" not in nesting:
            return False
        nesting = nesting.replace(b"()", b"")
    return b"()" in nesting


def _unstorable(text: str) -> tuple[str, str] | None:
    """Why PostgreSQL could not store ``text`` (NUL, or a lone surrogate) and the code for it, else ``None``."""
    if "\x00" in text:  # the code the catalog's own check for control characters uses
        return "Control characters are not allowed (here NUL, \\u0000).", "invalid"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "The string holds a lone UTF-16 surrogate (\\ud800-\\udfff).", "invalid_unicode"
    return None


def _unstorable_string(value: Any) -> tuple[str, str, str] | None:
    """The path of the first string (or key) in ``value`` that PostgreSQL could not store, why, and the code."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = _unstorable(item)
            if problem is not None:
                return where or "body", *problem
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _unstorable(key)
                if problem is not None:
                    return where or "body", f"In a key: {problem[0]}", problem[1]
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def loads(raw: bytes | str) -> Any:
    """Parse a request body; a body that is not acceptable JSON raises ``ValidationFailed`` (a 400)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _too_deep(data):
        raise MalformedBody.one("body", f"JSON nested deeper than {MAX_DEPTH} levels.", "too_deep")
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:  # unbalanced brackets can fool the count above; the parser itself is the last word
        raise MalformedBody.one("body", f"JSON nested deeper than {MAX_DEPTH} levels.", "too_deep") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise MalformedBody.one("body", f"JSON parse error - {exc}", "parse_error") from None
    if _UNSTORABLE_ESCAPE.search(data):
        found = _unstorable_string(value)
        if found is not None:
            raise ValidationFailed.one(*found)
    return value
