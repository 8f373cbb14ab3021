"""Standardisers: one function per identity field, each turning a raw value into a canonical one.

Every function returns None for a value it cannot make sense of: an invalid value becomes null,
never garbage that could link two strangers. They are pure functions of the raw value (plus the
locale or region), so `identity.records` runs them once per distinct raw value, not once per row.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from unidecode import unidecode

from identity.text import clean, fold, lower, title

# --- names -----------------------------------------------------------------------------------

# Titles and honorifics that are not part of a name (folded). Turkish "Bey"/"Hanım" follow the
# given name ("Ahmet Bey"), so they are dropped wherever they appear.
_HONORIFICS = frozenset({
    "bay", "bayan", "sn", "sayin", "bey", "hanim", "hn", "hnm", "mr", "mrs", "ms", "miss", "mx",
    "dr", "prof", "doc", "av", "muh", "sir", "madam",
})
_NAME_JUNK = re.compile(r"[0-9_@#*+=<>{}\[\]|\\/]")


class Name(NamedTuple):
    first: str | None  # display form, e.g. "Ayşe Nur"
    last: str | None   # display form, e.g. "Yılmaz"


def _name_tokens(text: str | None, turkish: bool) -> list[str]:
    if text is None:
        return []
    text = _NAME_JUNK.sub(" ", text.replace(".", " ").replace(",", " "))
    return [t for t in text.split() if fold(t, turkish) and fold(t, turkish) not in _HONORIFICS]


def standardise_name(first: object, last: object, full: object, turkish: bool) -> Name:
    """First and last name in display form from separate fields or one full-name field.

    A full name "Ayşe Nur Yılmaz" splits into first "Ayşe Nur", last "Yılmaz"; "YILMAZ, Ayşe"
    (comma form) into first "Ayşe", last "Yılmaz". A one-word full name is taken as a first name.
    Swapped first/last fields are detected later, across the whole dataset (`identity.records`).
    """
    first_text, last_text, full_text = clean(first), clean(last), clean(full)
    if first_text is None and last_text is None and full_text is not None:
        if "," in full_text:
            before, _, after = full_text.partition(",")
            first_tokens = _name_tokens(after, turkish)
            last_tokens = _name_tokens(before, turkish)
        else:
            tokens = _name_tokens(full_text, turkish)
            first_tokens, last_tokens = (tokens[:-1], tokens[-1:]) if len(tokens) > 1 else (
                tokens, [])
    else:
        first_tokens = _name_tokens(first_text, turkish)
        last_tokens = _name_tokens(last_text, turkish)
    first_display = title(lower(" ".join(first_tokens), turkish), turkish) or None
    last_display = title(lower(" ".join(last_tokens), turkish), turkish) or None
    return Name(first_display, last_display)


# --- email -----------------------------------------------------------------------------------

_EMAIL_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_EMAIL_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
# Providers that deliver "name+tag@" to "name@" (sub-addressing).
_PLUS_PROVIDERS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com",
    "me.com", "protonmail.com", "proton.me", "yandex.com", "yandex.com.tr", "fastmail.com",
})
# Frequent domain typos; a fixed domain is still a guess, so only unambiguous ones are listed.
_DOMAIN_TYPOS = {
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gamil.com": "gmail.com",
    "gmail.co": "gmail.com", "gmail.con": "gmail.com", "gmaill.com": "gmail.com",
    "hotmial.com": "hotmail.com", "hotmai.com": "hotmail.com", "hotmail.con": "hotmail.com",
    "hotmal.com": "hotmail.com", "yaho.com": "yahoo.com", "yahoo.con": "yahoo.com",
    "outlok.com": "outlook.com",
}


@lru_cache(maxsize=200_000)
def standardise_email(raw: object) -> str | None:
    """Canonical email: trimmed, lower case, ASCII (a Turkish keyboard's `ı` for `i` folded),
    gmail/googlemail dots and `+tags` removed, plus-tags removed for providers that ignore them.
    """
    text = clean(raw)
    if text is None:
        return None
    text = unidecode(text.replace("İ", "i").replace("ı", "i")).lower().replace(" ", "")
    text = text.removeprefix("mailto:").strip("<>\"'")
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = _DOMAIN_TYPOS.get(domain.strip("."), domain.strip("."))
    if not local or not _EMAIL_LOCAL.match(local) or not _EMAIL_DOMAIN.match(domain):
        return None
    if domain in _PLUS_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in {"gmail.com", "googlemail.com"}:
        local, domain = local.replace(".", ""), "gmail.com"
    if not local:
        return None
    return f"{local}@{domain}"


# --- phone -----------------------------------------------------------------------------------

_PHONE_CHARS = re.compile(r"[^0-9+]")


@lru_cache(maxsize=64)
def _dialling(region: str) -> tuple[str, str | None, str | None]:
    """Country code, international prefix and trunk prefix of a region ("90", "00", "0" for TR)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    code = str(phonenumbers.country_code_for_region(region))
    if meta is None:
        return code, None, None
    intl = meta.international_prefix if (meta.international_prefix or "").isdigit() else None
    return code, intl, meta.national_prefix


def standardise_phone(raw: object, region: str) -> str | None:
    """E.164 (`+905321234567`) when `phonenumbers` finds a valid number; numbers without a country
    code are read in `region`. Invalid numbers (wrong length, unknown prefix) become None."""
    text = clean(raw)
    if text is None:
        return None
    text = text.split(" ext")[0].split(" x")[0]
    if text.endswith(".0"):  # a number once stored as a float
        text = text[:-2]
    digits = _PHONE_CHARS.sub("", text)
    if len(digits.lstrip("+")) < 6:
        return None
    # One spelling per number before the (slow) parse, so "0532 123 45 67", "05321234567" and
    # "+90 532 123 4567" are parsed once between them.
    code, intl, trunk = _dialling(region)
    if digits.startswith("+"):
        key = "+" + digits.replace("+", "")
    elif intl and digits.startswith(intl):
        key = "+" + digits[len(intl):]
    elif trunk and digits.startswith(trunk):
        key = "+" + code + digits[len(trunk):]
    else:
        key = digits.replace("+", "")
    return _parse_phone(key, region)


@lru_cache(maxsize=300_000)
def _parse_phone(key: str, region: str) -> str | None:
    candidates = [key]
    if not key.startswith("+"):
        candidates.append("+" + key)  # "905321234567": country code without the plus
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


# --- birth date ------------------------------------------------------------------------------

_MONTHS = {
    # English and Turkish month names and abbreviations, folded
    "jan": 1, "january": 1, "ocak": 1, "oca": 1,
    "feb": 2, "february": 2, "subat": 2, "sub": 2,
    "mar": 3, "march": 3, "mart": 3,
    "apr": 4, "april": 4, "nisan": 4, "nis": 4,
    "may": 5, "mayis": 5,
    "jun": 6, "june": 6, "haziran": 6, "haz": 6,
    "jul": 7, "july": 7, "temmuz": 7, "tem": 7,
    "aug": 8, "august": 8, "agustos": 8, "agu": 8,
    "sep": 9, "sept": 9, "september": 9, "eylul": 9, "eyl": 9,
    "oct": 10, "october": 10, "ekim": 10, "eki": 10,
    "nov": 11, "november": 11, "kasim": 11, "kas": 11,
    "dec": 12, "december": 12, "aralik": 12, "ara": 12,
}
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_DMY = re.compile(r"^(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4}|\d{2})(?:[T ]\d.*)?$")
_COMPACT = re.compile(r"^(\d{8})$")
_WORDS = re.compile(r"[a-z]+|\d+")
# Dates forms default to when the real one is unknown.
_PLACEHOLDER_DATES = frozenset({date(1900, 1, 1), date(1901, 1, 1), date(1899, 12, 31)})
MAX_AGE_YEARS = 120


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_month(a: int, b: int, dayfirst: bool) -> tuple[int, int]:
    """(day, month) from two numbers whose order is only known from the locale or their size."""
    if a > 12 >= b:
        return a, b
    if b > 12 >= a:
        return b, a
    return (a, b) if dayfirst else (b, a)


@lru_cache(maxsize=100_000)
def standardise_birth_date(raw: object, today: date | None = None,
                           dayfirst: bool = True) -> date | None:
    """A birth date from ISO, day-first (`31/12/1985`, `1.2.1985`, `31-12-85`), compact
    (`19851231`) or worded (`12 Mart 1985`, `March 12, 1985`) forms.

    Impossible dates (31 February), future dates, ages over 120 and form placeholders
    (1900-01-01) become None. `dayfirst` decides `03/04/1985` when both readings are valid.
    """
    if isinstance(raw, date):
        parsed: date | None = raw
    else:
        text = clean(raw)
        if text is None:
            return None
        parsed = _parse_date_text(text.lower(), dayfirst, today or date.today())
    today = today or date.today()
    if parsed is None or parsed > today or parsed in _PLACEHOLDER_DATES:
        return None
    if today.year - parsed.year > MAX_AGE_YEARS:
        return None
    return parsed


def _parse_date_text(text: str, dayfirst: bool, today: date) -> date | None:
    if m := _ISO.match(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    if m := _DMY.match(text):
        day, month = _day_month(int(m[1]), int(m[2]), dayfirst)
        year = int(m[3])
        if len(m[3]) == 2:  # a birth year is in the past: 85 -> 1985, 07 -> 2007
            year += 2000 if 2000 + year <= today.year else 1900
        return _make_date(year, month, day)
    if m := _COMPACT.match(text):
        digits = m[1]
        if digits[:2] in {"19", "20"}:
            return _make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return _make_date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    parts = _WORDS.findall(unidecode(text.replace("ı", "i")))
    months = [_MONTHS[p] for p in parts if p in _MONTHS]
    numbers = [int(p) for p in parts if p.isdigit()]
    if len(months) == 1 and len(numbers) == 2 and len(parts) == 3:
        years = [n for n in numbers if n > 31]
        days = [n for n in numbers if n <= 31]
        if len(years) == 1 and len(days) == 1:
            return _make_date(years[0], months[0], days[0])
    return None


# --- location --------------------------------------------------------------------------------

_COUNTRIES = {
    "tr": "TR", "tur": "TR", "turkey": "TR", "turkiye": "TR", "türkiye": "TR",
    "turkiye cumhuriyeti": "TR", "gb": "GB", "uk": "GB", "gbr": "GB", "united kingdom": "GB",
    "great britain": "GB", "england": "GB", "ingiltere": "GB", "de": "DE", "deu": "DE",
    "germany": "DE", "almanya": "DE", "deutschland": "DE", "us": "US", "usa": "US",
    "united states": "US", "abd": "US", "fr": "FR", "france": "FR", "fransa": "FR",
    "nl": "NL", "netherlands": "NL", "hollanda": "NL",
}


@lru_cache(maxsize=10_000)
def standardise_country(raw: object) -> str | None:
    """ISO 3166 alpha-2 code from a code or a (Turkish or English) country name."""
    text = clean(raw)
    if text is None:
        return None
    key = fold(text) or ""
    if key in _COUNTRIES:
        return _COUNTRIES[key]
    if len(key) == 2 and key.isalpha():
        return key.upper()
    return None


_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


@lru_cache(maxsize=100_000)
def standardise_postcode(raw: object, country: str | None) -> str | None:
    """Postcode without spaces or punctuation, upper case, checked against the country's shape
    where known (TR: five digits, province 01-81; GB: outward + inward code)."""
    text = clean(raw)
    if text is None:
        return None
    code = re.sub(r"[^0-9A-Z]", "", unidecode(text).upper())
    if country == "TR":
        return code if len(code) == 5 and code.isdigit() and 1 <= int(code[:2]) <= 81 else None
    if country == "GB":
        m = _UK_POSTCODE.match(code)
        return f"{m[1]} {m[2]}" if m else None
    return code if 3 <= len(code) <= 10 else None


class Place(NamedTuple):
    display: str | None  # "İstanbul"
    key: str | None      # "istanbul"


@lru_cache(maxsize=100_000)
def standardise_city(raw: object, turkish: bool) -> Place:
    """City in display form and as a folded key (İstanbul / ISTANBUL / istanbul -> istanbul)."""
    text = clean(raw)
    if text is None:
        return Place(None, None)
    text = re.sub(r"\(.*?\)", " ", text).strip(" ,./-")
    key = fold(text, turkish)
    if not key or key.isdigit():
        return Place(None, None)
    return Place(title(lower(text, turkish), turkish), key)


# Street-type abbreviations (folded) and their full forms, so "Atatürk Cad. No:5" and
# "ataturk caddesi no 5" have the same key.
_ADDRESS_WORDS = {
    "mah": "mahallesi", "mh": "mahallesi", "mahalle": "mahallesi", "cad": "caddesi",
    "cd": "caddesi", "cadde": "caddesi", "sok": "sokak", "sk": "sokak", "sokagi": "sokak",
    "bulv": "bulvari", "blv": "bulvari", "bul": "bulvari", "apt": "apartmani", "ap": "apartmani",
    "kat": "kat", "daire": "daire", "d": "daire", "no": "no", "st": "street", "str": "street",
    "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "dr": "drive", "sq": "square",
}


@lru_cache(maxsize=200_000)
def standardise_address(raw: object, turkish: bool) -> Place:
    """Street address: display form trimmed, key folded with street-type abbreviations expanded."""
    text = clean(raw)
    if text is None:
        return Place(None, None)
    folded = fold(text.replace(":", " ").replace("/", " "), turkish)
    if not folded:
        return Place(None, None)
    key = " ".join(_ADDRESS_WORDS.get(t, t) for t in folded.split())
    if len(key) < 4:
        return Place(None, None)
    return Place(text, key)


# --- small fields ----------------------------------------------------------------------------

_GENDERS = {
    "f": "F", "female": "F", "w": "F", "woman": "F", "k": "F", "kadin": "F", "kiz": "F",
    "bayan": "F", "m": "M", "male": "M", "man": "M", "e": "M", "erkek": "M", "bay": "M",
}


def standardise_gender(raw: object) -> str | None:
    """'F' or 'M' from English or Turkish words and letters (K/Kadın, E/Erkek); else None."""
    text = clean(raw)
    return _GENDERS.get(fold(text) or "") if text else None


_TRUE = frozenset({"true", "t", "1", "y", "yes", "e", "evet", "opt_in", "optin", "subscribed"})
_FALSE = frozenset({"false", "f", "0", "n", "no", "h", "hayir", "opt_out", "optout",
                    "unsubscribed"})


def standardise_bool(raw: object) -> bool | None:
    """An explicit yes/no (true/false, 1/0, Y/N, Evet/Hayır); None when unknown."""
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return None
    key = (fold(str(raw).strip()) or "").replace(" ", "_")
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


_CODE_JUNK = re.compile(r"^(.)\1*$")  # "0000000", "xxxx"


def standardise_code(raw: object, kind: str) -> str | None:
    """Account-like identifiers (loyalty card, login id, device id): trimmed; loyalty card numbers
    lose spaces and dashes and are upper case; a run of one repeated character is None."""
    text = clean(raw)
    if text is None:
        return None
    if kind == "loyalty_id":
        text = re.sub(r"[\s\-.]", "", text).upper()
    elif kind == "device_id":
        text = text.lower()
    if len(text) < 3 or _CODE_JUNK.match(text):
        return None
    return text
