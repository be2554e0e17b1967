"""Audit actions written by accounts, registered with ``ledger.actions``.

The names keep the ``governance.`` prefix they had before tokens moved here: the audit log is append-only
and its vocabulary does not change with the code layout.
"""

from __future__ import annotations

from ledger.actions import register

__all__ = ["TOKEN_CREATE", "TOKEN_REVOKE", "TOKEN_SCOPE_REFUSED"]

TOKEN_CREATE = register("governance.token.create", "{actor} created API token {target}")
TOKEN_REVOKE = register("governance.token.revoke", "{actor} revoked API token {target}")
TOKEN_SCOPE_REFUSED = register(
    "governance.token.scope_refused", "{actor} was refused: API token {target} is scoped and may not do that"
)
