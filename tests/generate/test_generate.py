"""`cdp generate`: deterministic, conforming to cdp.yaml, complete ground truth, realistic."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow.parquet as pq
import pytest

from cdp.config import Settings, load_settings
from cdp.errors import CdpError
from cdp.generate import generate
from cdp.generate import run as generate_run
from cdp.io import sha256_file
from tests.conftest import write_config
from tests.generate.helpers import channel_files, read_rows

AS_OF = dt.date(2026, 11, 1)
CHANNELS = ["web_orders", "app_events", "pos_transactions", "email_subscribers", "sms_contacts",
            "call_center_tickets", "loyalty_members", "carts"]


def _settings(folder: Path, **overrides: object) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    return load_settings(write_config(folder, **overrides), env={})


def _hashes(settings: Settings) -> dict[str, str]:
    files = [p for c in settings.channels.values() for p in channel_files(settings, c)]
    files.append(settings.resolved_paths.truth)
    return {p.name: sha256_file(p) for p in files}


def _rows(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {name: list(read_rows(settings, settings.channels[name])) for name in CHANNELS}


def _truth(settings: Settings) -> dict[tuple[str, str], str]:
    lines = settings.resolved_paths.truth.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "source,source_record_id,entity_id"
    pairs = [tuple(line.split(",")) for line in lines[1:]]
    truth = {(s, r): e for s, r, e in pairs}
    assert len(truth) == len(pairs), "a record appears twice in the truth file"
    return truth


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any, dict[str, Any]]:
    """1,500 people at realistic noise, generated once for the read-only checks below."""
    settings = _settings(tmp_path_factory.mktemp("gen"))
    summary = generate(settings, people=1500, seed=42)
    return settings, summary, _rows(settings)


def _by_entity(settings: Settings, rows: dict[str, list[dict[str, Any]]], channel: str,
               column: str) -> dict[str, set[Any]]:
    truth = _truth(settings)
    pk = settings.channels[channel].primary_key
    values: dict[str, set[Any]] = defaultdict(set)
    for row in rows[channel]:
        if row[column] is not None:
            values[truth[(channel, str(row[pk]))]].add(row[column])
    return values


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_rerun_overwrites_identically(
        settings: Settings, tmp_path: Path) -> None:
    generate(settings, people=250, seed=5)
    first = _hashes(settings)
    assert len(first) == len(CHANNELS) + 1
    generate(settings, people=250, seed=5)  # same folder: replaced with the same bytes
    assert _hashes(settings) == first
    other = _settings(tmp_path / "other")
    generate(other, people=250, seed=5)
    assert _hashes(other) == first
    generate(other, people=250, seed=6)
    changed = _hashes(other)
    assert all(changed[name] != digest for name, digest in first.items())


def test_spilled_sort_gives_the_same_bytes(settings: Settings, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    generate(settings, people=200, seed=3)
    expected = _hashes(settings)
    monkeypatch.setattr(generate_run, "SPOOL_BUDGET", 97)  # forces many sorted runs + merge
    spilled = _settings(tmp_path / "spilled")
    generate(spilled, people=200, seed=3)
    assert _hashes(spilled) == expected


# --- files as cdp.yaml declares them -------------------------------------------------------------

def test_every_channel_written_in_its_declared_format(dataset: Any) -> None:
    settings, summary, rows = dataset
    landing = settings.resolved_paths.landing
    for name in CHANNELS:
        channel = settings.channels[name]
        files = channel_files(settings, channel)
        assert [f.name for f in files] == [f"{name}_20261101.{channel.format}"]
        assert files[0].parent == landing / name
        assert len(rows[name]) == summary.figures["rows"][name] > 0
        for row in rows[name]:
            for column_name, column in channel.columns.items():
                if column.required:
                    assert row[column_name] is not None, f"{name}.{column_name} missing"
    parquet = pq.read_schema(channel_files(settings, settings.channels["loyalty_members"])[0])
    assert str(parquet.field("joined_at").type) == "timestamp[us]"
    assert str(parquet.field("points_balance").type) == "int64"
    assert str(parquet.field("email_consent").type) == "bool"


def test_primary_keys_unique_and_truth_covers_every_row_once(dataset: Any) -> None:
    settings, summary, rows = dataset
    truth = _truth(settings)
    seen = set()
    for name in CHANNELS:
        pk = settings.channels[name].primary_key
        keys = [(name, str(row[pk])) for row in rows[name]]
        assert len(set(keys)) == len(keys), f"{name}: duplicate primary keys"
        seen.update(keys)
    assert seen == set(truth)
    assert summary.figures["truth_rows"] == len(truth) == summary.figures["total_rows"]
    entities = set(truth.values())
    assert all(re.fullmatch(r"P\d{7}", e) for e in entities)
    assert 0.5 * 1500 < len(entities) <= 1500


def test_turkish_text_survives_and_pos_is_windows_1254(dataset: Any) -> None:
    settings, _, rows = dataset
    web = channel_files(settings, settings.channels["web_orders"])[0].read_text(encoding="utf-8")
    assert all(ch in web for ch in "şğıİöüçŞÇÖÜ")
    raw = channel_files(settings, settings.channels["pos_transactions"])[0].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # Turkish letters are single cp1254 bytes, not UTF-8
    text = raw.decode("cp1254")  # strict: every byte is valid windows-1254
    assert "\r\n" in text and ";" in text.splitlines()[0]
    names = [r["CUST_NAME"] for r in rows["pos_transactions"] if r["CUST_NAME"]]
    assert all(n == n.upper() for n in names)
    assert any("İ" in n for n in names) and any("Ş" in n or "Ğ" in n for n in names)
    assert not any("i" in n or "ı" in n for n in names)  # Turkish-aware upper case
    folded = [n for n in names if n.isascii()]
    assert 0.1 < len(folded) / len(names) < 0.9  # some terminals drop Turkish letters
    amounts = [line.split(";")[6] for line in text.splitlines()[1:]]
    assert all(re.fullmatch(r"\d+,\d\d", a) for a in amounts)


def test_no_event_after_as_of_and_history_spans_months(dataset: Any) -> None:
    settings, _, rows = dataset
    end = dt.datetime.combine(AS_OF, dt.time())
    for name in CHANNELS:
        channel = settings.channels[name]
        times = [r[channel.event_time] for r in rows[name]]
        times = [t if isinstance(t, dt.datetime) else dt.datetime.combine(t, dt.time())
                 for t in times]
        assert max(times) < end, name
        for column_name, column in channel.columns.items():
            if column.type == "timestamp":
                assert all(r[column_name] is None or r[column_name] < end for r in rows[name])
    orders = [r["ordered_at"] for r in rows["web_orders"]]
    assert (max(orders) - min(orders)).days > 400


# --- hard negatives ------------------------------------------------------------------------------

def test_households_share_address_and_landline(dataset: Any) -> None:
    settings, _, rows = dataset
    addresses = defaultdict(set)
    for entity, values in _by_entity(settings, rows, "web_orders", "shipping_address").items():
        for value in values:
            addresses[value].add(entity)
    assert any(len(people) >= 2 for people in addresses.values())
    landlines = defaultdict(set)
    for channel, column in (("call_center_tickets", "caller_number"), ("web_orders", "phone"),
                            ("pos_transactions", "CUST_PHONE")):
        for entity, values in _by_entity(settings, rows, channel, column).items():
            for value in values:
                number = _e164(value)
                if not number.startswith("+905"):  # not a mobile
                    landlines[number].add(entity)
    assert any(len(people) >= 2 for people in landlines.values())


def test_junk_identifiers_shared_by_many_people(dataset: Any) -> None:
    settings, _, rows = dataset
    by_phone = defaultdict(set)
    for entity, values in _by_entity(settings, rows, "pos_transactions", "CUST_PHONE").items():
        for value in values:
            by_phone[value].add(entity)
    junk = {"05555555555", "0000000000", "5555555555", "1111111111", "05000000000"}
    assert max(len(by_phone[j]) for j in junk) >= 5
    mobiles = defaultdict(set)
    for phone, people in by_phone.items():
        if phone not in junk and _e164(phone).startswith("+905"):
            mobiles[_e164(phone)] |= people
    assert mobiles and max(len(p) for p in mobiles.values()) == 1  # a mobile is one person's
    emails = defaultdict(set)
    for entity, values in _by_entity(settings, rows, "web_orders", "customer_email").items():
        for value in values:
            emails[value.strip().lower()].add(entity)
    assert len(emails["test@test.com"]) >= 2


def test_twins_share_surname_birth_date_and_not_first_name(dataset: Any) -> None:
    settings, summary, rows = dataset
    assert summary.figures["twin_pairs"] >= 5
    truth = _truth(settings)
    seen: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for row in rows["loyalty_members"]:
        if row["birth_date"] and row["last_name"]:
            entity = truth[("loyalty_members", row["member_id"])]
            key = (row["last_name"].lower(), row["birth_date"])
            seen[key][entity] = row["first_name"]
    for row in rows["web_orders"]:
        if row["birth_date"] and row["last_name"]:
            entity = truth[("web_orders", row["order_id"])]
            day = dt.date.fromisoformat(row["birth_date"]) if "-" in row["birth_date"] else None
            if day:
                seen[(row["last_name"].lower(), f"{day:%d/%m/%Y}")][entity] = row["first_name"]
    twins = [names for names in seen.values() if len(names) >= 2]
    assert twins, "no two people with the same surname and birth date in the data"
    assert any(len({n.lower() for n in names.values()}) >= 2 for names in twins)


def test_very_common_names_recur_across_people(dataset: Any) -> None:
    settings, _, rows = dataset
    names = defaultdict(set)
    truth = _truth(settings)
    for row in rows["loyalty_members"] + rows["web_orders"]:
        key = "member_id" if "member_id" in row else "order_id"
        source = "loyalty_members" if key == "member_id" else "web_orders"
        if row["last_name"] == "Yılmaz":
            names[row["first_name"]].add(truth[(source, row[key])])
    assert len(set().union(*names.values())) >= 10  # many different Yılmaz


# --- noise ---------------------------------------------------------------------------------------

def _emails_per_entity(settings: Settings, rows: dict[str, list[dict[str, Any]]]) -> dict[
        str, set[str]]:
    columns = {"web_orders": "customer_email", "app_events": "login_email", "email_subscribers":
               "email", "call_center_tickets": "email", "loyalty_members": "email",
               "carts": "login_email"}
    emails: dict[str, set[str]] = defaultdict(set)
    for channel, column in columns.items():
        for entity, values in _by_entity(settings, rows, channel, column).items():
            emails[entity] |= values
    return emails


def test_noise_zero_is_clean(settings: Settings) -> None:
    generate(settings, people=300, seed=11, noise=0)
    rows = _rows(settings)
    emails = _emails_per_entity(settings, rows)
    assert emails and all(len(v) == 1 for v in emails.values())
    first_names = defaultdict(set)
    for channel in ("web_orders", "loyalty_members"):
        for entity, values in _by_entity(settings, rows, channel, "first_name").items():
            first_names[entity] |= values
    assert all(len(v) == 1 for v in first_names.values())
    phones = defaultdict(set)
    for channel, column in (("web_orders", "phone"), ("pos_transactions", "CUST_PHONE"),
                            ("sms_contacts", "msisdn"), ("loyalty_members", "mobile")):
        for entity, values in _by_entity(settings, rows, channel, column).items():
            phones[entity] |= {_e164(v) for v in values}
    assert all(len(v) == 1 for v in phones.values())


def test_noise_one_varies_identifiers(dataset: Any) -> None:
    settings, _, rows = dataset
    emails = _emails_per_entity(settings, rows)
    varied = [v for v in emails.values() if len(v) > 1]
    assert len(varied) > 0.05 * len(emails)
    formats = {re.sub(r"\d", "9", r["phone"]) for r in rows["web_orders"] if r["phone"]}
    assert len(formats) >= 5  # 05xx..., +90 5xx ..., 5xxxxxxxxx, 90(5xx)..., ...
    births = {re.sub(r"\d", "9", r["birth_date"]) for r in rows["loyalty_members"]
              if r["birth_date"]}
    assert "99/99/9999" in births and len(births) >= 2


def _e164(text: str) -> str:
    """Any phone format the generator writes, as E.164 (junk stays as typed)."""
    digits = re.sub(r"\D", "", text)
    candidate = "+" + digits if digits.startswith("90") and len(digits) == 12 else text
    try:
        number = phonenumbers.parse(candidate, "TR")
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- marketing realism ---------------------------------------------------------------------------

def test_marketing_use_cases_are_present(dataset: Any) -> None:
    settings, summary, rows = dataset
    figures = summary.figures
    assert figures["lapsed_buyers"] > 0 and figures["loyalty_near_next_tier"] > 0
    assert 1.4 < figures["omnichannel_spend_ratio"] < 2.3
    web = rows["web_orders"]
    collect = [r for r in web if r["fulfilment"] == "click_and_collect"]
    assert collect and all(r["pickup_store_id"] for r in collect)
    assert all(r["pickup_store_id"] is None for r in web if r["fulfilment"] == "home_delivery")
    purchases = [r for r in rows["app_events"] if r["event_type"] == "purchase"]
    assert purchases and all(r["order_id"] and r["revenue"] > 0 for r in purchases)
    assert {r["event_type"] for r in rows["app_events"]} == {
        "app_open", "product_view", "add_to_cart", "checkout_start", "purchase"}
    order_ids = {r["order_id"] for r in web} | {r["order_id"] for r in purchases}
    carts = rows["carts"]
    converted = [r for r in carts if r["status"] == "converted"]
    assert converted and all(r["converted_order_id"] in order_ids for r in converted)
    week_ago = dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=7)
    assert any(r["status"] in ("open", "checkout") and r["updated_at"] >= week_ago for r in carts)
    assert {r["tier"] for r in rows["loyalty_members"]} == {"bronze", "silver", "gold",
                                                            "platinum"}
    assert {r["opt_in"] for r in rows["sms_contacts"]} == {"Y", "N"}
    assert {r["email_opt_in"] for r in web} == {True, False}
    # Engaged non-buyers: subscribers who open mails but never ordered anywhere.
    truth = _truth(settings)
    buyers = {truth[("web_orders", r["order_id"])] for r in web}
    buyers |= {truth[("pos_transactions", r["TRX_NO"])] for r in rows["pos_transactions"]}
    buyers |= {truth[("app_events", r["event_id"])] for r in purchases}
    engaged = {truth[("email_subscribers", r["subscriber_id"])]
               for r in rows["email_subscribers"] if r["opens_30d"] > 0}
    assert engaged - buyers
    store_only = (set(truth[("pos_transactions", r["TRX_NO"])] for r in rows["pos_transactions"])
                  - {truth[("web_orders", r["order_id"])] for r in web}
                  - {truth[("app_events", r["event_id"])] for r in purchases})
    assert len(store_only) > 100


# --- other locales and bad arguments -------------------------------------------------------------

def test_english_locale_uses_its_names_phones_and_currency(tmp_path: Path) -> None:
    settings = _settings(tmp_path, locale="en_GB", default_region="GB")
    generate(settings, people=150, seed=1)
    rows = _rows(settings)
    web = rows["web_orders"]
    assert web and {r["currency"] for r in web} == {"GBP"}
    assert all(r["first_name"] is None or r["first_name"].isascii() for r in web)
    phones = [r["msisdn"] for r in rows["sms_contacts"]]
    assert phones and all(
        phonenumbers.is_valid_number(phonenumbers.parse("+" + p)) for p in phones
        if p.startswith("44"))
    assert sum(p.startswith("44") for p in phones) > 0.8 * len(phones)


def test_bad_arguments_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CdpError, match="people"):
        generate(settings, people=0)
    with pytest.raises(CdpError, match="noise"):
        generate(settings, people=10, noise=-1)
    with pytest.raises(CdpError, match="xx_XX"):
        generate(_settings(tmp_path / "bad", locale="xx_XX"), people=10)
    assert not settings.resolved_paths.truth.exists()
