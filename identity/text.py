"""Locale-aware casing, ASCII folding and string similarity used by the standardisers and guards.

Python's `str.lower()` is wrong for Turkish: `"I".lower()` is `"i"` (Turkish wants dotless `ı`) and
`"İ".lower()` is `"i̇"` (an `i` plus a combining dot). Comparison keys are ASCII-folded after the
locale-aware lowering, so `Şahin`, `ŞAHİN` and `Sahin` all meet at `sahin`, while display values
keep their Turkish letters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

_NON_KEY = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
# Placeholders people type when a form insists on a value.
EMPTY_TOKENS = frozenset({
    "", "-", "--", ".", "0", "null", "none", "nan", "n/a", "na", "nil", "yok", "bilinmiyor",
    "unknown", "test", "xxx", "x", "?",
})


def is_turkish(locale: str | None) -> bool:
    """True for Turkish (and Azerbaijani, same i/ı rules) locales such as `tr_TR` or `tr`."""
    return bool(locale) and locale.lower().split("_")[0].split("-")[0] in {"tr", "az"}


def clean(value: object) -> str | None:
    """NFC-normalised, trimmed, single-spaced text; None for empty or placeholder values."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value))
    text = _SPACES.sub(" ", text).strip()
    if text.lower() in EMPTY_TOKENS:
        return None
    return text


def lower(text: str, turkish: bool) -> str:
    """Lower case with Turkish rules when asked (I -> ı, İ -> i); never leaves a combining dot."""
    text = text.replace("I", "ı").replace("İ", "i") if turkish else text.replace("İ", "i")
    return text.lower()


def upper(text: str, turkish: bool) -> str:
    """Upper case with Turkish rules when asked (i -> İ, ı -> I)."""
    if turkish:
        text = text.replace("i", "İ").replace("ı", "I")
    return text.upper()


def title(text: str, turkish: bool) -> str:
    """Display casing: each word (and each part of a hyphenated word) capitalised."""

    def word(w: str) -> str:
        return "-".join(upper(p[:1], turkish) + lower(p[1:], turkish) for p in w.split("-"))

    return " ".join(word(w) for w in text.split(" ") if w)


@lru_cache(maxsize=200_000)
def fold(text: str | None, turkish: bool = True) -> str | None:
    """ASCII comparison key: lower case, diacritics removed, only [a-z0-9 ], single spaces."""
    if text is None:
        return None
    folded = unidecode(lower(text, turkish)).lower()
    folded = _SPACES.sub(" ", _NON_KEY.sub(" ", folded)).strip()
    return folded or None


@lru_cache(maxsize=500_000)
def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity in [0, 1] (the same measure Splink's SQL function computes)."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    a_flags = [False] * la
    b_flags = [False] * lb
    matches = 0
    for i, ch in enumerate(a):
        lo, hi = max(0, i - window), min(lb, i + window + 1)
        for j in range(lo, hi):
            if not b_flags[j] and b[j] == ch:
                a_flags[i] = b_flags[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    transpositions = 0
    j = 0
    for i in range(la):
        if a_flags[i]:
            while not b_flags[j]:
                j += 1
            if a[i] != b[j]:
                transpositions += 1
            j += 1
    m = float(matches)
    jaro = (m / la + m / lb + (m - transpositions / 2) / m) / 3
    prefix = 0
    for ca, cb in zip(a[:4], b[:4], strict=False):
        if ca != cb:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when `a` and `b` differ by at most one substitution, insertion, deletion or swap of
    two adjacent characters (the typical typing slip)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]])
    if la > lb:
        a, b = b, a
    return any(b[:i] + b[i + 1:] == a for i in range(len(b)))
