"""Resolve on a hand-made lake where every record's right answer is known.

One small dataset holds the hard cases: a family sharing an email and a landline, twins, a
store's placeholder phone, two different people with the same name plus a name-only record,
app events repeating one identity, a record re-delivered in a later batch, and consent changes.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from cdp.config import Settings, load_settings
from identity import explain_customer, explain_records, resolve
from tests.conftest import write_config
from tests.identity.lake import write_batch

FAMILY_EMAIL = "yilmaz.aile@gmail.com"


def _lake(settings: Settings) -> None:
    t = datetime
    write_batch(settings, "loyalty_members", [
        dict(member_id="L1", card_number="1001", first_name="Mehmet", last_name="Yılmaz",
             birth_date="01/07/1980", email=FAMILY_EMAIL, mobile="0532 111 11 11",
             joined_at=t(2023, 1, 1)),
        dict(member_id="L2", card_number="1002", first_name="Ayşe", last_name="YILMAZ",
             birth_date="12/03/1983", email=FAMILY_EMAIL, mobile="0533 222 22 22",
             city="İSTANBUL", joined_at=t(2023, 1, 1), email_consent=True, sms_consent=False),
        dict(member_id="L3", card_number="1003", first_name="Zeynep", last_name="Yılmaz",
             birth_date="05/05/2005", email=FAMILY_EMAIL, joined_at=t(2023, 1, 1)),
        dict(member_id="L4", card_number="1004", first_name="Ali", last_name="Kaya",
             birth_date="01/01/2001", mobile="0312 555 00 00", city="Ankara",
             joined_at=t(2023, 1, 1)),
        dict(member_id="L5", card_number="1005", first_name="Veli", last_name="Kaya",
             birth_date="01/01/2001", mobile="0312 555 00 00", city="Ankara",
             joined_at=t(2023, 1, 1)),
        dict(member_id="L6", card_number="2001", first_name="Ahmet", last_name="Demir",
             birth_date="02/01/1970", joined_at=t(2023, 1, 1)),
        dict(member_id="L7", card_number="2002", first_name="Ahmet", last_name="Demir",
             birth_date="09/09/1995", joined_at=t(2023, 1, 1)),
        dict(member_id="L8", card_number="3001", first_name="Selin", last_name="Acar",
             birth_date="04/04/1990", email="selin.acar@gmail.com", joined_at=t(2023, 1, 1)),
    ])
    write_batch(settings, "web_orders", [
        dict(order_id="W1", ordered_at=t(2024, 5, 1), customer_email=FAMILY_EMAIL,
             first_name="AYŞE", last_name="Yılmaz", phone="+90 533 222 2222", order_total=10,
             shipping_address="Atatürk Cad. No:5", email_opt_in=False),
        dict(order_id="W2", ordered_at=t(2024, 1, 1), customer_email=FAMILY_EMAIL,
             first_name="Memo", last_name="Yılmaz", birth_date="1980-07-01", order_total=10),
        dict(order_id="W3", ordered_at=t(2024, 1, 1), customer_email=FAMILY_EMAIL,
             first_name="Zeynep", last_name="Yilmaz", birth_date="05.05.2005", order_total=10),
        dict(order_id="W4", ordered_at=t(2024, 1, 1), first_name="Ali", last_name="Kaya",
             birth_date="2001-01-01", phone="03125550000", order_total=10),
        dict(order_id="W5", ordered_at=t(2024, 1, 1), customer_email="old@example.com",
             first_name="Ozan", last_name="Er", phone="0532 555 10 10", order_total=10),
        dict(order_id="W7", ordered_at=t(2024, 3, 1), customer_email="ozan.er@example.com",
             first_name="Ozan", last_name="Er", phone="0532 555 20 20", order_total=10),
    ], ingested_at=t(2025, 1, 1))
    # W5 delivered again later with a corrected email: the later ingestion wins
    write_batch(settings, "web_orders", [
        dict(order_id="W5", ordered_at=t(2024, 1, 1), customer_email="ozan.er@example.com",
             first_name="Ozan", last_name="Er", phone="0532 555 10 10", order_total=10),
    ], ingested_at=t(2025, 2, 1))
    store_phone = "0532 999 99 99"
    write_batch(settings, "pos_transactions", [
        dict(TRX_NO="P1", TRX_DATE=t(2024, 2, 1), STORE_CODE="S1", CUST_NAME="Can Öztürk",
             CUST_PHONE="0555 555 55 55", AMOUNT=5),   # configured junk phone
        dict(TRX_NO="P2", TRX_DATE=t(2024, 2, 1), STORE_CODE="S1", CUST_NAME="Deniz Acar",
             CUST_PHONE="0555 555 55 55", AMOUNT=5),
        *[dict(TRX_NO=f"P{3 + i}", TRX_DATE=t(2024, 2, 1), STORE_CODE="S1", CUST_NAME=name,
               CUST_PHONE=store_phone, AMOUNT=5)
          for i, name in enumerate(["Ece Tan", "Fatih Er", "Gül Ak", "Hakan Şen"])],
        dict(TRX_NO="P7", TRX_DATE=t(2024, 2, 1), STORE_CODE="S1", AMOUNT=5),  # anonymous
        dict(TRX_NO="P8", TRX_DATE=t(2024, 2, 1), STORE_CODE="S1", CUST_NAME="AHMET DEMİR",
             AMOUNT=5),                                 # name only: two Ahmet Demirs exist
    ])
    write_batch(settings, "sms_contacts", [
        dict(contact_id="S1", msisdn="905332222222", name="Ayşe Yılmaz", opt_in="Y",
             opt_in_date=date(2024, 6, 1)),
    ])
    write_batch(settings, "app_events", [
        *[dict(event_id=f"E{i}", event_time=t(2024, 4, i), event_type="app_open",
               device_id="dev-1", account_id="A-9", login_email="Selin.Acar@gmail.com",
               user_name="Selin Acar") for i in range(1, 6)],
        dict(event_id="E6", event_time=t(2024, 4, 9), event_type="app_open", device_id="dev-1"),
    ])
    write_batch(settings, "email_subscribers", [
        dict(subscriber_id="SUB1", email="selinacar@gmail.com", first_name="Selin",
             subscribed_at=t(2024, 1, 1), status="subscribed"),
    ])


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    folder = tmp_path_factory.mktemp("scenarios")
    # A near-zero threshold accepts every pair Splink scores at all (family members, twins,
    # namesakes): keeping those people apart is then entirely the guards' job.
    settings = load_settings(write_config(folder), env={"CDP__IDENTITY__MATCH_THRESHOLD": "0.001"})
    _lake(settings)
    summary = resolve(settings)
    con = duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)
    rows = con.execute("select source, source_record_id, customer_id "
                       "from identity.identity_clusters").fetchall()
    con.close()
    customer = {f"{s}:{r}": c for s, r, c in rows}
    return settings, {"summary": summary, "customer": customer}


def _same(customer: dict, *refs: str) -> bool:
    return len({customer[r] for r in refs}) == 1


def _apart(customer: dict, *refs: str) -> bool:
    return len({customer[r] for r in refs}) == len(refs)


def test_shared_family_email_does_not_merge_the_family(resolved) -> None:
    _, out = resolved
    c = out["customer"]
    assert _apart(c, "loyalty_members:L1", "loyalty_members:L2", "loyalty_members:L3")
    assert _same(c, "loyalty_members:L2", "web_orders:W1", "sms_contacts:S1")
    assert _same(c, "loyalty_members:L1", "web_orders:W2")   # "Memo" is Mehmet
    assert _same(c, "loyalty_members:L3", "web_orders:W3")


def test_twins_stay_apart(resolved) -> None:
    _, out = resolved
    c = out["customer"]
    assert _apart(c, "loyalty_members:L4", "loyalty_members:L5")
    assert c["web_orders:W4"] != c["loyalty_members:L5"]


def test_junk_and_store_phones_do_not_merge_strangers(resolved) -> None:
    settings, out = resolved
    c = out["customer"]
    assert _apart(c, *(f"pos_transactions:P{i}" for i in range(1, 7)))
    con = duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)
    classes = dict(con.execute("""select value, class from identity.identity_identifiers
                                  where kind = 'phone'""").fetchall())
    con.close()
    assert classes["+905555555555"] == "junk"   # configured junk value
    assert classes["+905329999999"] == "junk"   # used by 4 people > max_people_per_identifier
    assert out["summary"].figures["identifier_classes"]["email"]["shared"] == 1  # family email


def test_name_only_record_does_not_bridge_two_customers(resolved) -> None:
    _, out = resolved
    c = out["customer"]
    assert _apart(c, "loyalty_members:L6", "loyalty_members:L7", "pos_transactions:P8")


def test_repeated_app_events_collapse_into_one_identity_record(resolved) -> None:
    settings, out = resolved
    c = out["customer"]
    events = [f"app_events:E{i}" for i in range(1, 7)]
    assert _same(c, "loyalty_members:L8", "email_subscribers:SUB1", *events)
    con = duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)
    n_records, n_rows = con.execute("""
        select count(distinct record_key), count(*) from identity.identity_clusters
        where source = 'app_events'""").fetchall()[0]
    con.close()
    assert (n_records, n_rows) == (2, 6)   # E1-E5 identical payload, E6 device only


def test_unresolved_rows_are_counted_not_turned_into_customers(resolved) -> None:
    _, out = resolved
    assert "pos_transactions:P7" not in out["customer"]
    assert out["summary"].figures["rows_unresolved"] == 1
    rows = dict(out["summary"].rows)
    assert rows["unresolved records (no identifier, no name)"] == 1


def test_latest_ingested_version_of_a_record_wins(resolved) -> None:
    settings, out = resolved
    con = duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)
    email = con.execute("""select r.email from identity.identity_clusters c
                           join identity.identity_records r using (record_key)
                           where c.source = 'web_orders' and c.source_record_id = 'W5'
                        """).fetchall()[0][0]
    count = con.execute("""select count(*) from identity.identity_clusters
                           where source = 'web_orders' and source_record_id = 'W5'""").fetchall()
    con.close()
    assert email == "ozan.er@example.com"
    assert count[0][0] == 1
    assert _same(out["customer"], "web_orders:W5", "web_orders:W7")


def _golden(settings: Settings, ref: str, customer: dict) -> dict:
    con = duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)
    row = con.sql("select * from identity.golden_profiles where customer_id = ?",
                  params=[customer[ref]]).to_arrow_table().to_pylist()[0]
    con.close()
    return row


def test_survivorship_trust_recency_and_consent(resolved) -> None:
    settings, out = resolved
    ayse = _golden(settings, "loyalty_members:L2", out["customer"])
    assert (ayse["first_name"], ayse["last_name"]) == ("Ayşe", "Yılmaz")
    assert ayse["first_name_source"] == "loyalty_members"        # most trusted source
    assert ayse["birth_date"] == date(1983, 3, 12)
    assert ayse["phone"] == "+905332222222"
    assert ayse["city"] == "İstanbul"
    assert ayse["channels"] == ["loyalty_members", "sms_contacts", "web_orders"]
    assert ayse["record_count"] == 3
    # email: opted in at sign-up (2023), opted out in a web order (2024): the opt-out wins
    assert ayse["email_opt_in"] is False and ayse["email_opt_in_source"] == "web_orders"
    # sms: opted out at sign-up, opted in later by SMS keyword: the latest explicit value wins
    assert ayse["sms_opt_in"] is True and ayse["sms_opt_in_source"] == "sms_contacts"
    assert ayse["ads_opt_in"] is None                            # never asked: unknown
    ozan = _golden(settings, "web_orders:W7", out["customer"])
    assert ozan["phone"] == "+905325552020"                      # same trust: most recent
    assert ozan["phones"] == ["+905325551010", "+905325552020"]
    assert ozan["first_seen_at"] == datetime(2024, 1, 1)
    assert ozan["last_seen_at"] == datetime(2024, 3, 1)


def test_summary_reports_the_run(resolved) -> None:
    _, out = resolved
    summary = out["summary"]
    rows = dict(summary.rows)
    assert rows["records in: app_events"] == 6
    assert rows["source records in"] == 30
    assert rows["distinct identity records"] == 26
    refused = summary.figures["refused_by_guard"]
    assert sum(refused.get(g, 0) for g in ("loyalty_id", "first_name", "birth_date")) >= 3
    assert refused.get("name_only_bridge", 0) >= 1
    assert set(summary.figures["seconds"]) >= {"standardise", "link", "train", "predict",
                                               "cluster", "golden"}


def test_explain_records(resolved) -> None:
    settings, _ = resolved
    same = explain_records(settings, "web_orders:W1", "sms_contacts:S1")
    rows = dict(same.rows)
    assert rows["same customer"] == "yes"
    assert "phone +90" in rows["deterministic"] and "personal" in rows["deterministic"]
    assert "Splink match weight" in rows
    family = explain_records(settings, "loyalty_members:L1", "loyalty_members:L2")
    rows = dict(family.rows)
    assert rows["same customer"] == "no"
    assert "shared by 3 people" in rows["deterministic"]
    assert FAMILY_EMAIL not in str(family.rows)                 # identifiers are masked
    assert rows["guard between the two customers"] == "loyalty_id"   # two different cards


def test_explain_customer(resolved) -> None:
    settings, out = resolved
    summary = explain_customer(settings, out["customer"]["loyalty_members:L2"])
    text = str(summary.rows)
    assert "y***@gmail.com" in text and FAMILY_EMAIL not in text
    assert "+905332222222" not in text
    assert sorted(summary.figures["records"]) == [
        ("loyalty_members", "L2"), ("sms_contacts", "S1"), ("web_orders", "W1")]
    assert dict(summary.rows)["first_name"] == "Ayşe  (from loyalty_members)"
