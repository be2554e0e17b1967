"""CPU and memory amounts as Kubernetes writes them ("500m", "2", "4Gi"), to and from whole units.

Stored as integers (millicores, bytes) so quotas add up in SQL; shown and sent to connectors in the
canonical Kubernetes form (``format_cpu(500) == "500m"``, ``format_memory(4 * 2**30) == "4Gi"``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["format_cpu", "format_memory", "parse_cpu", "parse_memory"]

_CPU = re.compile(r"(?P<number>\d+(\.\d+)?|\.\d+)(?P<milli>m?)")
_MEMORY = re.compile(r"(?P<number>\d+(\.\d+)?|\.\d+)(?P<unit>Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def parse_cpu(value: object) -> int:
    """Millicores from ``"500m"``, ``"0.5"``, ``"2"``, ``2`` or ``0.5``; ``ValueError`` saying what is wrong."""
    text = _text(value)
    match = _CPU.fullmatch(text)
    if not match:
        raise ValueError(f'{text!r} is not a CPU amount; write cores ("2", "0.5") or millicores ("500m")')
    number = Decimal(match["number"])
    millis = number if match["milli"] else number * 1000
    if millis != millis.to_integral_value():
        raise ValueError(f"{text!r} is finer than a millicore (1m)")
    if millis <= 0:
        raise ValueError("must be more than zero")
    return int(millis)


def parse_memory(value: object) -> int:
    """Bytes from ``"512Mi"``, ``"4Gi"``, ``"1G"`` or a plain number of bytes; ``ValueError`` otherwise."""
    text = _text(value)
    match = _MEMORY.fullmatch(text)
    if not match:
        raise ValueError(f'{text!r} is not a memory amount; write e.g. "512Mi", "4Gi" or "1G"')
    try:
        amount = Decimal(match["number"]) * _UNITS[match["unit"] or ""]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a memory amount") from None
    if amount != amount.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of bytes")
    if amount <= 0:
        raise ValueError("must be more than zero")
    return int(amount)


def format_cpu(millis: int) -> str:
    """``"2"`` for 2000, ``"500m"`` for 500."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(amount: int) -> str:
    """The largest unit that divides exactly: ``"4Gi"``, ``"1500Mi"``, ``"1G"``, or bytes."""
    for unit in ("Pi", "Ti", "Gi", "Mi", "Ki", "P", "T", "G", "M", "k"):
        size = _UNITS[unit]
        if amount >= size and amount % size == 0:
            return f"{amount // size}{unit}"
    return str(amount)


def _text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError('give a string such as "2" or a number')
    return (repr(value) if isinstance(value, float) else str(value)).strip()
