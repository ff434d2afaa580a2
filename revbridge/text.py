"""Text hygiene shared by the domain: control characters, name normalisation, domains."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

# Legal-form tokens stripped from the end of a company name before fuzzy comparison (after
# casefolding, accent stripping and dot removal, so "B.V." is "bv" and "S.p.A." is "spa").
LEGAL_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "llc", "lllp", "llp", "lp", "ltd", "limited", "corp",
        "corporation", "co", "company", "plc", "pty", "pte", "gmbh", "mbh", "ag", "kg", "ohg",
        "ug", "ev", "bv", "nv", "vof", "sa", "sas", "sarl", "sl", "slu", "spa", "srl", "as",
        "asa", "ab", "oy", "oyj", "aps", "se", "kk", "sro", "zrt", "kft",
    }
)  # fmt: skip

_WHITESPACE_CONTROLS = {"\t", "\n", "\r", "\v", "\f", "\x85", "\u2028", "\u2029"}
_SPACES = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# dots and apostrophes vanish without a space: "B.V." → "bv", "O'Reilly" → "oreilly"
_DROPPED_PUNCTUATION = str.maketrans("", "", ".'`\u2018\u2019\u00b4")


# The name functions are pure and called for every candidate of every account a run matches:
# memoised, so a name is cleaned once per process, not once per comparison.
_MEMO = 65_536


def clean_text(value: str | None, *, multiline: bool = False) -> str:
    """Drop control and format characters (NUL, zero-width space, BOM, bidi marks...).

    Line breaks and tabs become spaces unless ``multiline``, where line breaks survive. The result
    is NFC-normalised, with runs of spaces collapsed (per line) and the ends stripped.
    """
    if not value:
        return ""
    return _clean(value, multiline) if isinstance(value, str) else _clean(str(value), multiline)


@lru_cache(maxsize=_MEMO)
def _clean(value: str, multiline: bool) -> str:
    text = unicodedata.normalize("NFC", value)
    kept: list[str] = []
    for ch in text:
        if multiline and ch == "\n":
            kept.append("\n")
        elif ch in _WHITESPACE_CONTROLS:
            kept.append(" ")
        elif unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            kept.append(ch)
    cleaned = "".join(kept)
    if multiline:
        lines = [_SPACES.sub(" ", line).strip() for line in cleaned.split("\n")]
        return "\n".join(lines).strip("\n")
    return _SPACES.sub(" ", cleaned).strip()


@lru_cache(maxsize=_MEMO)
def normalise_name(name: str) -> str:
    """A company name reduced for comparison: casefolded, accents and punctuation gone, a
    leading "the" and trailing legal forms (Inc, LLC, GmbH, B.V., S.p.A. ...) stripped."""
    decomposed = unicodedata.normalize("NFKD", clean_text(name).casefold())
    base = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    tokens = _NON_ALNUM.sub(" ", base.translate(_DROPPED_PUNCTUATION)).split()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    return " ".join(tokens)


@lru_cache(maxsize=_MEMO)
def name_key(name: str) -> str:
    """How QuickBooks compares DisplayNames for uniqueness: case-insensitive, spaces collapsed."""
    return clean_text(name).casefold()


@lru_cache(maxsize=_MEMO)
def domain_of(value: str | None) -> str | None:
    """The host of an email address or a URL, lowercased, without a leading "www."."""
    text = clean_text(value).lower()
    if not text:
        return None
    if "@" in text and "/" not in text:
        host = text.rsplit("@", 1)[1]
    else:
        host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    host = host.strip(".")
    if host.startswith("www."):
        host = host[4:]
    return host if "." in host else None
