"""Salesforce record Ids: 15-character case-sensitive, 18-character case-safe."""

from __future__ import annotations

import re

_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def is_salesforce_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character Id (the checksum of an 18 is verified)."""
    if not _ID.match(value):
        return False
    return len(value) == 15 or to_18(value[:15]) == value[:15] + value[15:].upper()


def to_18(record_id: str) -> str:
    """The 18-character form: the 15-character Id plus its case-safe checksum suffix."""
    if not _ID.match(record_id):
        raise ValueError(f"not a Salesforce Id: {record_id!r}")
    if len(record_id) == 18:
        return record_id
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(record_id[start : start + 5]) if ch.isupper())
        suffix += _SUFFIX_ALPHABET[bits]
    return record_id + suffix


def same_record(a: str, b: str) -> bool:
    """Whether two Ids name the same record (15 vs 18 characters, case-safe 18s)."""
    if len(a) == 18 and len(b) == 18:
        return a.casefold() == b.casefold()
    return len(a) >= 15 and len(b) >= 15 and a[:15] == b[:15]
