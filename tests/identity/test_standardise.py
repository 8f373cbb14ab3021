"""Standardisers on Turkish and international edge cases: invalid input becomes None."""

from __future__ import annotations

from datetime import date

import pytest

from identity.nicknames import canonical_first_name
from identity.standardise import (
    standardise_address,
    standardise_birth_date,
    standardise_bool,
    standardise_city,
    standardise_code,
    standardise_country,
    standardise_email,
    standardise_gender,
    standardise_name,
    standardise_phone,
    standardise_postcode,
)
from identity.text import fold, lower, title, upper

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize("raw", ["İstanbul", "ISTANBUL", "istanbul", "İSTANBUL", " istanbul  "])
def test_city_spellings_share_one_key(raw: str) -> None:
    assert standardise_city(raw, turkish=True).key == "istanbul"


def test_city_display_keeps_turkish_letters() -> None:
    assert standardise_city("İSTANBUL", turkish=True).display == "İstanbul"
    assert standardise_city("istanbul", turkish=True).display == "İstanbul"
    # plain ASCII capitals are read the Turkish way (I is dotless)
    assert standardise_city("ISPARTA", turkish=True).display == "Isparta"
    assert standardise_city("KADIKÖY", turkish=True) == ("Kadıköy", "kadikoy")
    assert standardise_city("34", turkish=True) == (None, None)


def test_turkish_casing_rules() -> None:
    assert lower("IŞIK", turkish=True) == "ışık"
    assert lower("İSMAİL", turkish=True) == "ismail"
    assert upper("ışık", turkish=True) == "IŞIK"
    assert upper("işık", turkish=True) == "İŞIK"
    assert title("IŞIK", turkish=True) == "Işık"
    # without Turkish rules dotted capital I never leaves a combining dot behind
    assert lower("İ", turkish=False) == "i"
    assert title("ISABEL", turkish=False) == "Isabel"


@pytest.mark.parametrize("a, b", [("IŞIK", "Işık"), ("Şahin", "Sahin"), ("ŞAHİN", "sahin"),
                                  ("Gülşen", "GULSEN"), ("Çağrı", "cagri"), ("Öztürk", "OZTURK")])
def test_ascii_folded_forms_meet(a: str, b: str) -> None:
    assert fold(a) == fold(b)


def test_names_from_full_name_comma_form_and_honorifics() -> None:
    assert standardise_name(None, None, "Ayşe Nur YILMAZ", True) == ("Ayşe Nur", "Yılmaz")
    assert standardise_name(None, None, "YILMAZ, Ayşe", True) == ("Ayşe", "Yılmaz")
    assert standardise_name(None, None, "Ahmet Bey", True) == ("Ahmet", None)
    assert standardise_name(None, None, "Mr. John SMITH", False) == ("John", "Smith")
    assert standardise_name("IŞIK", "ŞAHİN", None, True) == ("Işık", "Şahin")
    assert standardise_name(None, None, "  ", True) == (None, None)
    assert standardise_name("123", None, None, True) == (None, None)


@pytest.mark.parametrize("short, full", [("memo", "mehmet"), ("musti", "mustafa"),
                                         ("bob", "robert"), ("liz", "elizabeth"),
                                         ("mehmet", "mehmet"), ("tarkan", "tarkan")])
def test_nicknames(short: str, full: str) -> None:
    assert canonical_first_name(short) == full


@pytest.mark.parametrize("raw, expected", [
    (" John.Smith+promo@GoogleMail.com ", "johnsmith@gmail.com"),
    ("j.o.h.n@gmail.com", "john@gmail.com"),
    ("AYSE@GMAIL.COM", "ayse@gmail.com"),
    ("ayse@gmaıl.com", "ayse@gmail.com"),       # Turkish-locale lowering of I
    ("ayse@gmial.com", "ayse@gmail.com"),       # common domain typo
    ("first.last+tag@hotmail.com", "first.last@hotmail.com"),
    ("first.last+tag@example.com.tr", "first.last+tag@example.com.tr"),  # unknown provider
    ("first.last@example.com", "first.last@example.com"),  # dots matter outside gmail
    ("not an email", None), ("a@b", None), ("@gmail.com", None), ("x@@y.com", None),
    ("", None), (None, None),
])
def test_email(raw: str | None, expected: str | None) -> None:
    assert standardise_email(raw) == expected


@pytest.mark.parametrize("raw, region, expected", [
    ("0532 123 45 67", "TR", "+905321234567"),
    ("5321234567", "TR", "+905321234567"),
    ("905321234567", "TR", "+905321234567"),
    ("90(532)1234567", "TR", "+905321234567"),
    ("+90 532 123 4567", "TR", "+905321234567"),
    ("0532-123-4567", "TR", "+905321234567"),
    ("0212 555 12 34", "TR", "+902125551234"),
    ("07911 123456", "GB", "+447911123456"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 7911 123456", "TR", "+447911123456"),
    ("12345", "TR", None), ("0000000000", "TR", None), ("abc", "TR", None), (None, "TR", None),
])
def test_phone(raw: str | None, region: str, expected: str | None) -> None:
    assert standardise_phone(raw, region) == expected


@pytest.mark.parametrize("raw, expected", [
    ("1985-03-12", date(1985, 3, 12)),
    ("12/03/1985", date(1985, 3, 12)),
    ("12.03.1985", date(1985, 3, 12)),
    ("1.2.1985", date(1985, 2, 1)),
    ("1985/03/12", date(1985, 3, 12)),
    ("03/25/1985", date(1985, 3, 25)),        # only one reading is a valid date
    ("12.03.85", date(1985, 3, 12)),
    ("19850312", date(1985, 3, 12)),
    ("12 Mart 1985", date(1985, 3, 12)),
    ("March 12, 1985", date(1985, 3, 12)),
    ("1985-03-12 00:00:00", date(1985, 3, 12)),
    ("31/02/1985", None), ("13/25/1985", None), ("2030-01-01", None), ("1900-01-01", None),
    ("1850-05-05", None), ("yesterday", None), ("", None), (None, None),
])
def test_birth_date(raw: str | None, expected: date | None) -> None:
    assert standardise_birth_date(raw, TODAY) == expected


def test_ambiguous_birth_date_follows_locale() -> None:
    assert standardise_birth_date("03/04/1985", TODAY, dayfirst=True) == date(1985, 4, 3)
    assert standardise_birth_date("03/04/1985", TODAY, dayfirst=False) == date(1985, 3, 4)


def test_postcode_country_and_address() -> None:
    assert standardise_postcode("34 710", "TR") == "34710"
    assert standardise_postcode("99999", "TR") is None       # no province 99
    assert standardise_postcode("3471", "TR") is None
    assert standardise_postcode("sw1a1aa", "GB") == "SW1A 1AA"
    assert standardise_postcode("nonsense", "GB") is None
    assert standardise_country("Türkiye") == "TR"
    assert standardise_country("TURKEY") == "TR"
    assert standardise_country("United Kingdom") == "GB"
    assert standardise_country("Atlantis") is None
    a = standardise_address("Atatürk Cad. No:5 D:3", True).key
    b = standardise_address("ATATURK CADDESI NO 5 DAIRE 3", True).key
    assert a == b == "ataturk caddesi no 5 daire 3"


def test_small_fields() -> None:
    assert standardise_gender("Kadın") == "F"
    assert standardise_gender("E") == "M"
    assert standardise_gender("female") == "F"
    assert standardise_gender("other") is None
    assert standardise_bool("Y") is True and standardise_bool("Hayır") is False
    assert standardise_bool("true") is True and standardise_bool("maybe") is None
    assert standardise_code("1111 2222-33", "loyalty_id") == "1111222233"
    assert standardise_code("0000000", "loyalty_id") is None
    assert standardise_code(" ABC-DEF ", "device_id") == "abc-def"
    assert standardise_code("null", "login_id") is None
