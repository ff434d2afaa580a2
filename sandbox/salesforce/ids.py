"""Salesforce record Ids: 15-character case-sensitive and 18-character case-safe forms.

Every Id the emulator stores is the 18-character form. Callers may send either: a 15-character Id
gets its checksum appended, and an 18-character Id in any letter case is restored to its original
case from its checksum, as Salesforce does.
"""

from __future__ import annotations

import re

from sandbox.demo_company import KEY_PREFIX, salesforce_checksum, salesforce_id

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?$")

PREFIX_TO_OBJECT = {prefix: name for name, prefix in KEY_PREFIX.items()}

__all__ = ["PREFIX_TO_OBJECT", "new_id", "normalize_id", "object_of"]


def normalize_id(value: str) -> str | None:
    """The canonical 18-character Id for ``value``, or None when it is not a well-formed Id."""
    if not _ID_SHAPE.match(value):
        return None
    if len(value) == 15:
        return value + salesforce_checksum(value)
    suffix = value[15:].upper()
    chars = list(value[:15])
    for chunk, symbol in enumerate(suffix):
        bits = _CHECKSUM_ALPHABET.index(symbol)
        for i in range(5):
            pos = chunk * 5 + i
            upper = bool(bits & (1 << i))
            if upper and not chars[pos].isalpha():
                return None
            chars[pos] = chars[pos].upper() if upper else chars[pos].lower()
    restored = "".join(chars)
    if salesforce_checksum(restored) != suffix:
        return None
    return restored + suffix


def object_of(record_id: str) -> str | None:
    """The object type an Id's key prefix names, when the org knows the prefix."""
    return PREFIX_TO_OBJECT.get(record_id[:3])


def new_id(sobject: str, n: int) -> str:
    """The n-th Id of an object type (the same scheme the demo company uses)."""
    return salesforce_id(sobject, n)
