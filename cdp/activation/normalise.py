"""Normalisation and SHA-256 hashing of identifiers, per platform, as each one documents it.

A platform matches our hash against the hash of *its* normalised copy of the value, so the
rules differ by platform and must be followed to the letter:

Meta Custom Audiences (multi-key schema):
  EMAIL   trim, lowercase (gmail dots are kept)
  PHONE   digits only with country code, no '+', no leading zeros      "905321234567"
  FN, LN  lowercase, no punctuation or spaces, UTF-8 letters kept        "çağla"
  CT      lowercase a-z only, no spaces: letters are transliterated      "canakkale"
  ZIP     lowercase, no spaces, US ZIP+4 cut at '-'
  COUNTRY ISO 3166-1 alpha-2, lowercase                                  "tr"
  GEN     "m" / "f";  DOBY "YYYY", DOBM "MM", DOBD "DD"
  all hashed with SHA-256 (lowercase hex); EXTERN_ID is sent unhashed.
Google Ads Customer Match:
  email   trim, lowercase, no whitespace; dots removed before @gmail.com / @googlemail.com
  phone   E.164 with '+'                                                 "+905321234567"
  first name  lowercase, spaces trimmed and collapsed; last name also without punctuation
  country_code and postal_code are sent unhashed.
TikTok customer file:
  email   trim, lowercase, '+tag' removed from the local part
  phone   digits only with country code, no '+', no leading zeros

Double hashing guard: a value that already is a 64-hex SHA-256 digest is passed through
(lowercased), never hashed again. Empty results are None: sha256("") is never sent.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache

import phonenumbers
from unidecode import unidecode

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NON_DIGIT = re.compile(r"[^0-9]+")
E164_DIGITS = range(7, 16)  # country code + subscriber number
_SPACES = re.compile(r"\s+")
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256(value: object) -> bool:
    """True for a 64-character hexadecimal string (an already hashed identifier)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return len(text) == 64 and _SHA256_HEX.fullmatch(text) is not None


def _text(value: object) -> str | None:
    """NFC, control characters removed, trimmed; None when empty. Fast for plain ASCII."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = text.translate(_CONTROL)
    return text.strip() or None


def _lower(text: str) -> str:
    # Python lowercases the Turkish dotted capital I to "i" + U+0307; everyone means "i".
    return (text.replace("İ", "i") if "İ" in text else text).lower()


# --- email -----------------------------------------------------------------------------------

def meta_email(value: object) -> str | None:
    if type(value) is str and value.isascii() and value.isprintable():  # the usual case
        return value.strip().lower() or None
    text = _text(value)
    return _lower(text) if text else None


def google_email(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    email = _SPACES.sub("", _lower(text))
    local, at, domain = email.rpartition("@")
    if at and domain in ("gmail.com", "googlemail.com"):
        email = f"{local.replace('.', '')}@{domain}"
    return email or None


def tiktok_email(value: object) -> str | None:
    email = meta_email(value)
    if not email:
        return None
    local, at, domain = email.rpartition("@")
    if at and "+" in local:
        email = f"{local.split('+', 1)[0]}@{domain}"
    return email


def generic_email(value: object) -> str | None:
    """For our own destinations (webhook, file, Postgres): trim and lowercase."""
    return meta_email(value)


# --- phone -----------------------------------------------------------------------------------

def e164(value: str, region: str = "TR") -> str | None:
    """'+<country code><number>'. Values with '+' or '00' keep their digits (7 to 15 of
    them); national numbers are read in `region` with phonenumbers (invalid ones give None)."""
    text = value.strip()
    number = text[1:]
    if (text[:1] == "+" and number.isascii() and number.isdigit() and number[:1] != "0"
            and len(number) in E164_DIGITS):
        return text  # already E.164: the usual case, kept fast
    return _e164_slow(text, region)


@lru_cache(maxsize=65_536)
def _e164_slow(text: str, region: str) -> str | None:
    digits = _NON_DIGIT.sub("", text)
    if not digits:
        return None
    if text.startswith(("+", "00")):
        international = (digits[2:] if text.startswith("00") else digits).lstrip("0")
        return "+" + international if len(international) in E164_DIGITS else None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def google_phone(value: object, region: str = "TR") -> str | None:
    text = _text(value)
    return e164(text, region) if text else None


def meta_phone(value: object, region: str = "TR") -> str | None:
    """Digits only, country code included, no leading zeros (Meta and TikTok)."""
    if type(value) is str and value[:1] == "+":  # already E.164: the usual case, kept fast
        digits = value[1:]
        if (digits.isascii() and digits.isdigit() and digits[:1] != "0"
                and len(digits) in E164_DIGITS):
            return digits
    number = google_phone(value, region)
    if not number:
        return None
    return number[1:].lstrip("0") or None


# --- names, places, demographics -------------------------------------------------------------

def meta_name(value: object) -> str | None:
    """Lowercase, letters only (UTF-8 letters and their combining marks kept)."""
    text = _text(value)
    if not text:
        return None
    kept = "".join(ch for ch in _lower(text) if unicodedata.category(ch)[0] in "LM")
    return unicodedata.normalize("NFC", kept) or None


def meta_city(value: object) -> str | None:
    """a-z only: Meta's documented rule; letters are transliterated first so "Çanakkale"
    becomes "canakkale" rather than losing its first letter."""
    text = _text(value)
    if not text:
        return None
    folded = unidecode(_lower(text)).lower()
    return "".join(ch for ch in folded if "a" <= ch <= "z") or None


def meta_zip(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    return _SPACES.sub("", _lower(text)).split("-")[0] or None


def country_code(value: object) -> str | None:
    """ISO 3166-1 alpha-2, upper case (Google's country_code); None unless two letters."""
    text = _text(value)
    if not text:
        return None
    code = text.upper()
    return code if len(code) == 2 and code.isascii() and code.isalpha() else None


def meta_country(value: object) -> str | None:
    code = country_code(value)
    return code.lower() if code else None


def meta_gender(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    first = _lower(text)[0]
    return first if first in ("f", "m") else None


def google_first_name(value: object) -> str | None:
    text = _text(value)
    return _SPACES.sub(" ", _lower(text)) if text else None


def google_last_name(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    kept = "".join(ch for ch in _lower(text) if unicodedata.category(ch)[0] != "P")
    return _SPACES.sub(" ", kept).strip() or None


def postal_code(value: object) -> str | None:
    text = _text(value)
    return _SPACES.sub("", text).upper() if text else None


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def birth_year(value: object) -> str | None:
    day = _as_date(value)
    return f"{day.year:04d}" if day and 1900 <= day.year <= date.today().year else None


def birth_month(value: object) -> str | None:
    day = _as_date(value)
    return f"{day.month:02d}" if day else None


def birth_day(value: object) -> str | None:
    day = _as_date(value)
    return f"{day.day:02d}" if day else None


def iso_date(value: object) -> str | None:
    day = _as_date(value)
    return day.isoformat() if day else None


def raw_text(value: object) -> str | None:
    """An unhashed field as stored (control characters removed, trimmed)."""
    if type(value) is str and value.isascii() and value.isprintable():
        return value.strip() or None
    return _text(value)


def gender_letter(value: object) -> str | None:
    letter = meta_gender(value)
    return letter.upper() if letter else None


def consent_status(value: object) -> str:
    """Google's ConsentStatus from our opt-in flag: unknown (null) is not a grant."""
    return "GRANTED" if value is True else "DENIED"


def hash_normalised(value: str | None) -> str | None:
    return sha256_hex(value) if value else None


def hash_identifier(value: object, normalise: Callable[[object], str | None]) -> str | None:
    """Normalise then SHA-256, unless the value already is a SHA-256 digest."""
    if is_sha256(value):
        return str(value).strip().lower()
    return hash_normalised(normalise(value))


def hash_column(values: list, normalise: Callable[[object], str | None]) -> list[str]:
    """hash_identifier over a column, '' for missing values (the hot loop of a sync)."""
    sha, hexdigits = hashlib.sha256, _SHA256_HEX.fullmatch
    out: list[str] = []
    append = out.append
    for value in values:
        if value is None:
            append("")
            continue
        if type(value) is str and len(value) >= 64:
            text = value.strip()
            if len(text) == 64 and hexdigits(text):
                append(text.lower())
                continue
        normalised = normalise(value)
        append(sha(normalised.encode("utf-8")).hexdigest() if normalised else "")
    return out
