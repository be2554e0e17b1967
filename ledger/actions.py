"""The registry of audit actions: every name an event may carry, with the sentence that describes it.

Each app declares its actions in its own ``actions.py`` (``ACTION = register("app.entity.verb", "...")``);
the ledger imports them all when Django starts (``LedgerConfig.ready``), and ``ledger.audit.record``
refuses a name that was never registered, so the list here is the whole vocabulary of the audit log.
Names never change once events carry them (the chain covers them); templates may.

A template is formatted with ``actor`` (the actor's name, ``system`` for Steward itself) and ``target``
(what the event is about, as it was then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ActionSpec", "UnknownAction", "check", "describe", "register", "registered"]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    template: str

    def describe(self, *, actor: str, target: str) -> str:
        return self.template.format(actor=actor or "system", target=target or "-")


class UnknownAction(LookupError):
    """An audit event named an action no app registered (a programming error, caught by the tests)."""


_ACTIONS: dict[str, ActionSpec] = {}


def register(name: str, template: str) -> str:
    """Declare an action; returns its name (what events store). Registering it again must say the same."""
    spec = ActionSpec(name, template)
    known = _ACTIONS.setdefault(name, spec)
    if known != spec:
        raise ValueError(f"Audit action {name!r} is already registered with another template.")
    return name


def registered() -> Mapping[str, ActionSpec]:
    return MappingProxyType(_ACTIONS)


def check(name: str) -> None:
    if name not in _ACTIONS:
        raise UnknownAction(f"Audit action {name!r} is not registered (declare it in its app's actions.py).")


def describe(name: str, *, actor: str, target: str) -> str:
    """The sentence for an event; an unknown (e.g. retired) name is shown as it is."""
    spec = _ACTIONS.get(name)
    return spec.describe(actor=actor, target=target) if spec else f"{actor or 'system'}: {name} {target}".strip()
