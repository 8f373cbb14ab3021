"""Normalisation before SHA-256, per platform, against the platforms' documented rules.

Expected digests are computed here with hashlib from the normalised form each platform
documents, so a wrong normalisation (an extra dot, a '+', a capital letter) changes the hash
and fails the test.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pyarrow as pa
import pytest

from cdp.activation import normalise as n
from cdp.activation.destinations.base import Batch
from cdp.activation.payload import (
    SENDABLE_META,
    PayloadBuilder,
    decode,
    generic_keys,
    google_keys,
    meta_keys,
    tiktok_keys,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_sha256_of_the_documented_example() -> None:
    assert n.hash_identifier("test@example.com", n.meta_email) == (
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b")


@pytest.mark.parametrize(("raw", "meta", "google", "tiktok"), [
    # Meta: trim + lowercase, gmail dots kept. Google: also drops dots before @gmail.com.
    (" John.Doe@Gmail.com ", "john.doe@gmail.com", "johndoe@gmail.com", "john.doe@gmail.com"),
    ("Jane.Doe@GoogleMail.com", "jane.doe@googlemail.com", "janedoe@googlemail.com",
     "jane.doe@googlemail.com"),
    ("Ali.Veli@Example.com", "ali.veli@example.com", "ali.veli@example.com",
     "ali.veli@example.com"),
    # TikTok documents dropping a +tag; the others keep it.
    ("shop+promo@Example.com", "shop+promo@example.com", "shop+promo@example.com",
     "shop@example.com"),
])
def test_email_normalisation(raw: str, meta: str, google: str, tiktok: str) -> None:
    assert n.meta_email(raw) == meta
    assert n.google_email(raw) == google
    assert n.tiktok_email(raw) == tiktok
    assert n.hash_identifier(raw, n.meta_email) == sha(meta)
    assert n.hash_identifier(raw, n.google_email) == sha(google)


@pytest.mark.parametrize(("raw", "region", "meta", "google"), [
    ("+90 532 123 45 67", "TR", "905321234567", "+905321234567"),
    ("+905321234567", "TR", "905321234567", "+905321234567"),
    ("0532 123 45 67", "TR", "905321234567", "+905321234567"),  # national: country code added
    ("0090 (532) 123-45-67", "TR", "905321234567", "+905321234567"),
    ("(650) 555-1212", "US", "16505551212", "+16505551212"),
])
def test_phone_normalisation(raw: str, region: str, meta: str, google: str) -> None:
    assert n.meta_phone(raw, region) == meta  # digits with country code, no '+' or zeros
    assert n.google_phone(raw, region) == google  # E.164
    assert n.hash_identifier(raw, lambda v: n.meta_phone(v, region)) == sha(meta)
    assert n.hash_identifier(raw, lambda v: n.google_phone(v, region)) == sha(google)


def test_invalid_phone_gives_nothing_to_hash() -> None:
    assert n.meta_phone("12", "TR") is None
    assert n.meta_phone("+12", "TR") is None and n.google_phone("+1234567890123456") is None
    assert n.hash_identifier("not a phone", lambda v: n.meta_phone(v, "TR")) is None


@pytest.mark.parametrize(("raw", "meta"), [
    ("Çağla", "çağla"),  # UTF-8 letters kept, lowercased
    ("İLKAY", "ilkay"),  # Turkish dotted capital I is "i", not "i" + combining dot
    ("Mary-Ann", "maryann"),  # no punctuation
    (" O'Brien ", "obrien"),
    ("Ayşe Nur", "ayşenur"),
])
def test_meta_name_keeps_utf8_letters_and_drops_punctuation(raw: str, meta: str) -> None:
    assert n.meta_name(raw) == meta
    assert n.hash_identifier(raw, n.meta_name) == sha(meta)


def test_google_names() -> None:
    assert n.google_first_name("  Ayşe   Nur ") == "ayşe nur"
    assert n.google_last_name("Şahin-Öz.") == "şahinöz"


def test_meta_city_zip_country_gender_and_dates() -> None:
    assert n.meta_city("Çanakkale") == "canakkale"  # a-z only: transliterated
    assert n.meta_city("New York") == "newyork"
    assert n.meta_zip(" 94025-1234 ") == "94025"
    assert n.meta_zip("SW1A 1AA") == "sw1a1aa"
    assert n.meta_country("TR") == "tr" and n.country_code("tr") == "TR"
    assert n.meta_country("Turkey") is None
    assert n.meta_gender("F") == "f" and n.meta_gender("Male") == "m"
    assert n.meta_gender("X") is None
    assert (n.birth_year("1990-03-07"), n.birth_month("1990-03-07"),
            n.birth_day("1990-03-07")) == ("1990", "03", "07")
    assert n.birth_year("1850-01-01") is None


def test_values_already_hashed_are_not_hashed_again() -> None:
    digest = sha("john.doe@gmail.com")
    assert n.hash_identifier(digest, n.meta_email) == digest
    assert n.hash_identifier(digest.upper(), n.google_email) == digest
    assert n.hash_identifier(f"  {digest}  ", lambda v: n.meta_phone(v, "TR")) == digest
    assert n.hash_column([digest, None, " X@Y.com "], n.meta_email) == [
        digest, "", sha("x@y.com")]


def test_empty_values_are_never_hashed() -> None:
    assert n.hash_identifier("   ", n.meta_email) is None
    assert n.hash_identifier(None, n.meta_name) is None
    assert n.hash_column(["", "  ", None], n.meta_email) == ["", "", ""]


def _members(**columns: list) -> pa.Table:
    size = len(columns["customer_id"])
    base = {name: [None] * size for name in (
        "since", "first_name", "last_name", "email", "phone", "birth_date", "gender", "city",
        "postcode", "country", "email_opt_in", "sms_opt_in", "ads_opt_in")}
    base.update(status=["eligible"] * size, matchable=[True] * size)
    base.update(columns)
    return pa.table(base)


def test_meta_payload_layout_and_hashes() -> None:
    keys = meta_keys(["EMAIL", "PHONE", "FN", "LN", "GEN", "DOBY", "DOBM", "DOBD", "CT", "ZIP",
                      "COUNTRY", "EXTERN_ID"], "TR")
    builder = PayloadBuilder(keys, "TR", SENDABLE_META)
    out = builder.build(_members(
        customer_id=["C1"], email=[" John.Doe@Gmail.com "], phone=["+90 532 123 45 67"],
        first_name=["Çağla"], last_name=["Şahin"], gender=["F"], birth_date=["1990-03-07"],
        city=["İstanbul"], postcode=["34000"], country=["TR"]))
    row = decode(out.column("payload")[0].as_py(), builder.layout)
    assert row == {
        "EMAIL": sha("john.doe@gmail.com"), "PHONE": sha("905321234567"),
        "FN": sha("çağla"), "LN": sha("şahin"), "GEN": sha("f"), "DOBY": sha("1990"),
        "DOBM": sha("03"), "DOBD": sha("07"), "CT": sha("istanbul"), "ZIP": sha("34000"),
        "COUNTRY": sha("tr"), "EXTERN_ID": "C1",
    }


def test_google_and_tiktok_payloads() -> None:
    google = PayloadBuilder(google_keys(["email", "phone", "address"], "TR", "ads_opt_in",
                                        "ads_opt_in"), "TR")
    members = _members(customer_id=["C1"], email=["John.Doe@Gmail.com"],
                       phone=["0532 123 45 67"], first_name=["Çağla"], last_name=["Şahin"],
                       postcode=["34000"], country=["tr"], ads_opt_in=[True])
    row = decode(google.build(members).column("payload")[0].as_py(), google.layout)
    assert row == {
        "hashedEmail": sha("johndoe@gmail.com"), "hashedPhoneNumber": sha("+905321234567"),
        "hashedFirstName": sha("çağla"), "hashedLastName": sha("şahin"),
        "countryCode": "TR", "postalCode": "34000",
        "adUserData": "GRANTED", "adPersonalization": "GRANTED",
    }
    tiktok = PayloadBuilder(tiktok_keys("TR"), "TR")
    row = decode(tiktok.build(members).column("payload")[0].as_py(), tiktok.layout)
    assert row == {"Email_SHA256": sha("john.doe@gmail.com"),
                   "Phone_SHA256": sha("905321234567")}


def test_members_without_a_matchable_key_are_not_sendable() -> None:
    builder = PayloadBuilder(meta_keys(["EMAIL", "PHONE", "FN", "LN", "ZIP", "EXTERN_ID"],
                                       "TR"), "TR", SENDABLE_META)
    out = builder.build(_members(
        customer_id=["C1", "C2", "C3", "C4"],
        email=[None, "a@b.com", None, None], phone=[None, None, None, "+905321234567"],
        first_name=["Ali", None, "Ali", None], last_name=["Kaya", None, "Kaya", None],
        postcode=[None, None, "34000", None]))
    assert out.column("status").to_pylist() == [
        "no_identifier", "eligible", "eligible", "eligible"]
    assert out.column("payload").to_pylist()[0] is None


def test_generic_fields_hash_email_and_e164_phone() -> None:
    builder = PayloadBuilder(generic_keys(["customer_id", "email_sha256", "phone_sha256",
                                           "since"], "TR"), "TR")
    out = builder.build(_members(customer_id=["C1"], email=[" A@B.com"],
                                 phone=["0532 123 45 67"], since=["2024-01-01"]))
    assert decode(out.column("payload")[0].as_py(), builder.layout) == {
        "customer_id": "C1", "email_sha256": sha("a@b.com"),
        "phone_sha256": sha("+905321234567"), "since": "2024-01-01"}


def _batch(layouts: list[str], payloads: list[str]) -> Batch:
    return Batch("b1", "meta", "seg", "add", datetime(2025, 1, 1),
                 [f"C{i}" for i in range(len(payloads))], ["new"] * len(payloads),
                 layouts, payloads)


def test_fast_json_rows_match_json_dumps_and_fall_back_when_escaping_is_needed() -> None:
    import json

    names = ["EMAIL", "PHONE", "EXTERN_ID"]
    safe = _batch(["EMAIL,PHONE,EXTERN_ID"] * 2,
                  [f"{sha('a')}\x1f\x1fC1", f"\x1f{sha('b')}\x1fÇ-2"])
    assert json.loads(safe.json_rows(names)) == safe.values(names) == [
        [sha("a"), "", "C1"], ["", sha("b"), "Ç-2"]]
    quoted = _batch(["EMAIL,PHONE,EXTERN_ID"], [f'{sha("a")}\x1f\x1fC"1\\'])
    assert quoted.json_rows(names) is None
    other_layout = _batch(["PHONE,EMAIL"], [f"{sha('p')}\x1f{sha('e')}"])
    assert other_layout.json_rows(names) is None
    assert other_layout.values(names) == [[sha("e"), sha("p"), ""]]  # mapped by key name
