"""How real systems and real people garble identifiers: typos, casing, ASCII folding, nicknames,
swapped names, email and phone variants, date formats.

Every probability is multiplied by the noise level (0 = clean, 1 = realistic, 2 = very dirty), so
`noise=0` yields each person's identifiers exactly as the population holds them.
"""

from __future__ import annotations

import datetime as dt
import random

import phonenumbers
from unidecode import unidecode

_TURKISH_FOLD = str.maketrans("şŞğĞıİöÖüÜçÇâÂîÎûÛ", "sSgGiIoOuUcCaAiIuU")
_TURKISH_UPPER = str.maketrans({"i": "İ", "ı": "I"})
_TURKISH_LOWER = str.maketrans({"İ": "i", "I": "ı"})
# Neighbouring keys on a Turkish Q keyboard, for substitution typos.
_NEIGHBOURS = {
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uoı", "j": "hk", "k": "jl", "l": "kş", "m": "nö", "n": "bm", "o": "ip", "p": "oğ",
    "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "y": "tu", "z": "x", "ş": "li",
    "ı": "ik", "ğ": "pü", "ü": "ğ", "ö": "mç", "ç": "ö",
}
# Letters people type without their Turkish forms even on a Turkish keyboard.
_TURKISH_SLIPS = {"ı": "i", "ş": "s", "ğ": "g", "ü": "u", "ö": "o", "ç": "c", "i": "ı"}


def fold(text: str) -> str:
    """ASCII-fold (Şahin -> Sahin, Gülşen -> Gulsen); other scripts via unidecode."""
    folded = text.translate(_TURKISH_FOLD)
    return folded if folded.isascii() else unidecode(folded)


def upper(text: str, turkish: bool) -> str:
    """Upper case with Turkish rules when asked (i -> İ, ı -> I)."""
    return (text.translate(_TURKISH_UPPER) if turkish else text).upper()


def lower(text: str, turkish: bool) -> str:
    return (text.translate(_TURKISH_LOWER) if turkish else text).lower()


def title(text: str, turkish: bool) -> str:
    return " ".join(upper(w[:1], turkish) + lower(w[1:], turkish) for w in text.split(" "))


def email_local(text: str) -> str:
    """A name as people put it into an email address: folded, lower case, letters only."""
    return "".join(ch for ch in fold(text).lower() if ch.isalnum())


class Noise:
    """Randomised corruption at a given level; deterministic for a given `rng`."""

    def __init__(self, rng: random.Random, level: float, region: str, turkish: bool) -> None:
        self.rng = rng
        self.level = max(0.0, level)
        self.region = region
        self.turkish = turkish

    def chance(self, p: float) -> bool:
        """True with probability p * level (capped), never at level 0."""
        return self.level > 0 and self.rng.random() < min(0.95, p * self.level)

    # --- names ------------------------------------------------------------------------------
    def typo(self, text: str) -> str:
        """One keyboard slip: substitute a neighbour, drop, double or swap letters."""
        if len(text) < 3:
            return text
        rng = self.rng
        i = rng.randrange(1, len(text))  # first letters are rarely wrong
        ch = text[i]
        kind = rng.random()
        if self.turkish and ch.lower() in _TURKISH_SLIPS and kind < 0.35:
            repl = _TURKISH_SLIPS[ch.lower()]
            return text[:i] + (repl.upper() if ch.isupper() else repl) + text[i + 1:]
        if kind < 0.55 and ch.lower() in _NEIGHBOURS:
            repl = rng.choice(_NEIGHBOURS[ch.lower()])
            return text[:i] + (repl.upper() if ch.isupper() else repl) + text[i + 1:]
        if kind < 0.75:
            return text[:i] + text[i + 1:]
        if kind < 0.88:
            return text[:i] + ch + text[i:]
        if i + 1 < len(text):
            return text[:i] + text[i + 1] + ch + text[i + 2:]
        return text

    def given_name(self, first: str, nicknames: dict[str, tuple[str, ...]], p_nick: float) -> str:
        """The given name as this record has it: compound names shortened, nicknames."""
        parts = first.split(" ")
        if len(parts) > 1 and self.chance(0.25):
            roll = self.rng.random()
            if roll < 0.6:
                first = parts[0]
            elif roll < 0.8:
                first = parts[1]
            else:  # "Ayşe Nur" -> "Ayşenur"
                first = parts[0] + lower(parts[1], self.turkish)
        head = first.split(" ")[0]
        if head in nicknames and self.chance(p_nick):
            first = first.replace(head, self.rng.choice(nicknames[head]), 1)
        return first

    def casing(self, text: str, p_lower: float, p_upper: float) -> str:
        if self.chance(p_lower):
            return lower(text, self.turkish)
        if self.chance(p_upper):
            return upper(text, self.turkish)
        return text

    # --- emails -----------------------------------------------------------------------------
    def email(self, address: str, p: float) -> str:
        """Case, whitespace, gmail dots and +tags, a rare domain slip."""
        if not self.chance(p):
            return address
        local, _, domain = address.partition("@")
        roll = self.rng.random()
        if roll < 0.3:
            return address.capitalize() if self.rng.random() < 0.5 else address.upper()
        if roll < 0.5:
            return self.rng.choice([" ", "", "  "]) + address + self.rng.choice([" ", "\t", ""])
        if roll < 0.75 and domain in ("gmail.com", "googlemail.com"):
            if "." in local:
                return local.replace(".", "") + "@" + domain
            cut = self.rng.randrange(1, len(local)) if len(local) > 1 else 1
            return f"{local[:cut]}.{local[cut:]}@{domain}"
        if roll < 0.9:
            tag = self.rng.choice(["shop", "promo", "news", "alisveris", "1"])
            return f"{local}+{tag}@{domain}"
        return f"{local}@{self.rng.choice(['gmial.com', 'hotmial.com', 'gmail.con'])}" \
            if domain in ("gmail.com", "hotmail.com") else address

    # --- phones -----------------------------------------------------------------------------
    def phone(self, e164: str, default_style: str, p_variant: float) -> str:
        """`e164` in the system's default style, or (with probability) any style people type."""
        style = default_style
        if self.chance(p_variant):
            style = self.rng.choice(PHONE_STYLES)
        return format_phone(e164, style, self.region)

    # --- dates ------------------------------------------------------------------------------
    def birth_date(self, day: dt.date, default_format: str, p_variant: float) -> str:
        fmt = default_format
        if self.chance(p_variant):
            fmt = self.rng.choice(DATE_STYLES)
        return format_date(day, fmt)


PHONE_STYLES = ("e164", "national", "national_spaced", "international", "digits",
                "cc_paren", "cc_digits", "dashed")
DATE_STYLES = ("iso", "dmy_slash", "dmy_dot", "dmy_dot_short", "ymd_slash")


def format_date(day: dt.date, style: str) -> str:
    if style == "iso":
        return day.isoformat()
    if style == "dmy_slash":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if style == "dmy_dot":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if style == "dmy_dot_short":  # D.M.YYYY, as typed without leading zeros
        return f"{day.day}.{day.month}.{day.year}"
    if style == "ymd_slash":
        return f"{day.year}/{day.month:02d}/{day.day:02d}"
    raise ValueError(f"unknown date style {style}")


def format_phone(e164: str, style: str, region: str) -> str:
    """One of the ways a phone number is written. `e164` like +905321234567."""
    if style == "e164":
        return e164
    if e164.startswith("+90") and len(e164) == 13:  # fast path for the default region
        cc, national = "90", e164[3:]
        number = None
    else:
        number = phonenumbers.parse(e164)
        cc, national = str(number.country_code), str(number.national_number)
    if style == "e164":
        return e164
    if style == "digits":  # what staff type into a numeric field
        return national
    if style == "cc_digits":  # SMS gateways: country code, no plus
        return cc + national
    if region == "TR" and cc == "90" and len(national) == 10:
        a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
        return {
            "national": f"0{national}",
            "national_spaced": f"0{a} {b} {c} {d}",
            "international": f"+90 {a} {b} {c}{d}",
            "cc_paren": f"90({a}){b}{c}{d}",
            "dashed": f"0{a}-{b}-{c}{d}",
        }[style]
    if number is None:
        number = phonenumbers.parse(e164)
    if style == "international":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national_fmt = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if style == "national_spaced":
        return national_fmt
    if style == "national":
        return "".join(ch for ch in national_fmt if ch.isdigit())
    if style == "cc_paren":
        return f"{cc}({national[:3]}){national[3:]}"
    if style == "dashed":
        return national_fmt.replace(" ", "-")
    raise ValueError(f"unknown phone style {style}")
