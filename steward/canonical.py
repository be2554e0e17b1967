"""Canonical JSON and its SHA-256: the one byte form every Steward digest covers.

The form (documented for outsiders in docs/compliance.md, "Canonical JSON"):

- ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)``: object keys sorted
  by code point, no whitespace between tokens, strings as JSON escapes them (``"`` and ``\\``, control characters)
  with every other character, non-ASCII included, written as itself;
- values JSON cannot hold (a datetime, a UUID, a Decimal) as their ``str()``;
- encoded as UTF-8; the digest is the lowercase hex SHA-256 of those bytes.

Audit hashes, history digests and lineage event keys written before this module existed used the same form with
non-ASCII characters escaped (``\\u00e9``). The two agree byte for byte whenever the text is ASCII; for stored
rows with non-ASCII text, :func:`legacy_digest` gives the old digest so verification and deduplication keep
accepting them (see ``ledger.audit.verify``, ``ledger.history`` and ``lineage.services.ingest``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_bytes", "canonical_text", "digest", "digest_text", "digests", "legacy_digest", "legacy_text"]


def canonical_text(value: Any) -> str:
    """The canonical JSON text of ``value`` (see the module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes: what every digest covers."""
    return canonical_text(value).encode()


def digest_text(text: str) -> str:
    """SHA-256 (lowercase hex) of canonical text already produced by :func:`canonical_text`."""
    return hashlib.sha256(text.encode()).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 (lowercase hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def legacy_text(value: Any) -> str:
    """The pre-``steward.canonical`` audit/history form: the canonical form with non-ASCII escaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def legacy_digest(value: Any, text: str | None = None) -> str | None:
    """The digest rows written before this module carry for ``value`` (non-ASCII escaped), or ``None`` when it
    equals :func:`digest` (the canonical text is ASCII). ``text``: ``value``'s canonical text, when known."""
    text = canonical_text(value) if text is None else text
    if text.isascii():
        return None
    return hashlib.sha256(legacy_text(value).encode()).hexdigest()


def digests(value: Any) -> tuple[str, ...]:
    """Every digest a stored row of ``value`` may carry: the current one, then the legacy one if it differs."""
    text = canonical_text(value)
    legacy = legacy_digest(value, text)
    current = digest_text(text)
    return (current,) if legacy is None else (current, legacy)
