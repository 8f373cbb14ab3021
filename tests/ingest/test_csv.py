"""CSV ingestion against a corpus of bad inputs: what lands in raw, what in quarantine, and
that every batch reconciles (received = loaded + quarantined, also in the load log)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from cdp.errors import CdpError
from cdp.ingest import ingest
from tests.ingest.helpers import (
    WEB_HEADER,
    assert_reconciled,
    good_web_rows,
    lake_snapshot,
    land,
    log_rows,
    quarantine_rows,
    raw_rows,
    web_csv,
    web_row,
)

POS_HEADER = "TRX_NO;TRX_DATE;STORE_CODE;AMOUNT;CUST_NAME;CUST_PHONE"
TURKISH = "Şükrü Işık İğdeoğlu"


def test_good_file_lands_typed_with_lineage(settings) -> None:
    land(settings, "web_orders", "orders.csv", web_csv(
        web_row("W1", total="1250.75", items="3"),
        web_row("W2", ordered_at="2024-03-02T09:30:00+03:00", items=""),
    ))
    summary = ingest(settings, ["web_orders"])
    rows = raw_rows(settings, "web_orders", "order_id, ordered_at, order_total, item_count, "
                    "first_name, _source_file, _row_number, _batch_id, typeof(order_total)")
    assert [r[:5] for r in rows] == [
        ("W1", datetime(2024, 3, 1, 10, 0), Decimal("1250.75"), 3, "Ayşe"),
        # An offset is converted to UTC; an empty integer is null.
        ("W2", datetime(2024, 3, 2, 6, 30), Decimal("10.50"), None, "Ayşe"),
    ]
    assert {r[5] for r in rows} == {"web_orders/orders.csv"}
    assert [r[6] for r in rows] == [1, 2]
    assert rows[0][8] == "DECIMAL(18,2)"
    (entry,) = log_rows(settings, "web_orders")
    assert rows[0][7] == entry["batch_id"] and len(entry["batch_id"]) == 64
    assert (entry["rows_received"], entry["rows_loaded"], entry["rows_quarantined"]) == (2, 2, 0)
    assert summary.figures["channels"]["web_orders"]["rows_loaded"] == 2
    assert quarantine_rows(settings, "web_orders") == []
    assert_reconciled(settings)


def test_file_truncated_mid_row_quarantines_the_cut_row(settings) -> None:
    text = web_csv(*good_web_rows(5))
    land(settings, "web_orders", "cut.csv", text + "W9999,2024-03-01T10:00:00,12")
    ingest(settings)
    assert len(raw_rows(settings, "web_orders")) == 5
    assert quarantine_rows(settings, "web_orders", "_row_number, _reason, _raw, _detail") == [
        (6, "wrong number of fields", "W9999,2024-03-01T10:00:00,12", "expected 7 fields, got 3")
    ]
    assert_reconciled(settings)


def test_file_truncated_mid_quote_quarantines_the_open_record(settings) -> None:
    # Cut inside a quoted field of the last column: the field count looks right, but the
    # quote never closes. Loading "Ay" as a last name would be silent truncation.
    text = web_csv(*good_web_rows(4))
    land(settings, "web_orders", "cut.csv", text + 'W9,2024-03-01T10:00:00,1,Ali,"Ay')
    ingest(settings)
    assert [r[0] for r in raw_rows(settings, "web_orders", "order_id")] == [
        "W0000", "W0001", "W0002", "W0003"]
    (row,) = quarantine_rows(settings, "web_orders", "_row_number, _reason, _raw")
    assert row == (5, "unparseable line", 'W9,2024-03-01T10:00:00,1,Ali,"Ay')
    assert_reconciled(settings)


def test_wrong_delimiter_fails_the_batch_and_names_the_rule(settings) -> None:
    land(settings, "web_orders", "semi.csv", web_csv(*good_web_rows(3)).replace(",", ";"))
    with pytest.raises(CdpError) as caught:
        ingest(settings)
    message = str(caught.value)
    assert "web_orders/semi.csv" in message
    assert "header lacks required columns" in message
    assert "looks delimited by ';'" in message
    assert "Ayşe" not in message and "example.com" not in message
    assert lake_snapshot(settings) == {}


def test_windows_1254_turkish_text_loads_correctly(settings) -> None:
    content = "\n".join([POS_HEADER, f"T1;05.01.2024 10:30;S01;1.234,56;{TURKISH};0532 111 22 33",
                         "T2;06.01.2024 09:05;S02;-12,5;ığüşöç İIiı;"]) + "\n"
    land(settings, "pos_transactions", "pos.csv", content, encoding="windows-1254")
    ingest(settings, ["pos_transactions"])
    assert raw_rows(settings, "pos_transactions", "TRX_NO, TRX_DATE, AMOUNT, CUST_NAME") == [
        ("T1", datetime(2024, 1, 5, 10, 30), Decimal("1234.56"), TURKISH),
        ("T2", datetime(2024, 1, 6, 9, 5), Decimal("-12.50"), "ığüşöç İIiı"),
    ]
    assert_reconciled(settings)


def test_windows_1254_bytes_declared_utf8_are_quarantined_as_bad_encoding(settings) -> None:
    settings.channels["pos_transactions"].encoding = "utf-8"
    ascii_rows = [f"T{i};05.01.2024 10:30;S01;10,00;Ali Veli;" for i in range(4)]
    content = "\n".join([POS_HEADER, *ascii_rows, f"T9;05.01.2024 10:30;S01;5,00;{TURKISH};"])
    land(settings, "pos_transactions", "pos.csv", content + "\n", encoding="windows-1254")
    ingest(settings, ["pos_transactions"])
    assert len(raw_rows(settings, "pos_transactions")) == 4
    (row,) = quarantine_rows(settings, "pos_transactions", "_row_number, _reason, _column, _raw")
    assert row[:3] == (5, "bad encoding", "CUST_NAME")
    # The undecodable bytes are kept, backslash-escaped: \xde = Ş, \xfd = ı in windows-1254.
    assert row[3].startswith("T9;05.01.2024 10:30;S01;5,00;\\xde\\xfck")
    assert row[3].encode("latin-1", "backslashreplace").decode("unicode_escape").encode(
        "latin-1").decode("windows-1254").endswith(f"{TURKISH};")
    assert_reconciled(settings)


def test_utf8_bom_is_stripped(settings) -> None:
    land(settings, "web_orders", "bom.csv", b"\xef\xbb\xbf" + web_csv(*good_web_rows(2)).encode())
    ingest(settings)
    assert [r[0] for r in raw_rows(settings, "web_orders", "order_id")] == ["W0000", "W0001"]
    assert_reconciled(settings)


def test_utf8_bom_on_a_windows_1254_channel_fails_as_encoding_mismatch(settings) -> None:
    content = "\n".join([POS_HEADER, f"T1;05.01.2024 10:30;S01;1,00;{TURKISH};"]) + "\n"
    land(settings, "pos_transactions", "pos.csv", b"\xef\xbb\xbf" + content.encode("utf-8"))
    with pytest.raises(CdpError, match="encoding mismatch"):
        ingest(settings, ["pos_transactions"])
    assert lake_snapshot(settings) == {}


def test_utf8_file_on_a_windows_1254_channel_fails_as_encoding_mismatch(settings) -> None:
    # Without a BOM: loading it as windows-1254 would garble every Turkish letter silently.
    content = "\n".join([POS_HEADER, f"T1;05.01.2024 10:30;S01;1,00;{TURKISH};"]) + "\n"
    land(settings, "pos_transactions", "pos.csv", content.encode("utf-8"))
    with pytest.raises(CdpError, match="encoding mismatch"):
        ingest(settings, ["pos_transactions"])
    assert lake_snapshot(settings) == {}


def test_windows_1254_file_with_turkish_letters_is_not_mistaken_for_utf8(settings) -> None:
    content = "\n".join([POS_HEADER, f"T1;05.01.2024 10:30;S01;1,00;{TURKISH};"]) + "\n"
    land(settings, "pos_transactions", "pos.csv", content.encode("windows-1254"))
    ingest(settings, ["pos_transactions"])
    assert raw_rows(settings, "pos_transactions", "CUST_NAME") == [(TURKISH,)]
    assert_reconciled(settings)


def test_embedded_newlines_and_quotes_load_verbatim(settings) -> None:
    tricky = '"Ayşe ""the boss""\nsecond line, with comma"'
    land(settings, "web_orders", "tricky.csv", web_csv(
        web_row("W1", first_name=tricky), web_row("W2")).replace("\n", "\r\n"))
    ingest(settings)
    rows = raw_rows(settings, "web_orders", "order_id, first_name, _row_number")
    assert rows == [("W1", 'Ayşe "the boss"\r\nsecond line, with comma', 1), ("W2", "Ayşe", 2)]
    assert_reconciled(settings)


def test_sql_looking_strings_load_verbatim(settings) -> None:
    evil = "Robert'); DROP TABLE students;--"
    land(settings, "web_orders", "sql.csv", web_csv(
        web_row("W1", first_name=evil, last_name="x' OR '1'='1"),
        web_row("W2';--", last_name='"; select 1; --"')))
    ingest(settings)
    assert raw_rows(settings, "web_orders", "order_id, first_name, last_name") == [
        ("W1", evil, "x' OR '1'='1"), ("W2';--", "Ayşe", "; select 1; --")]
    assert_reconciled(settings)


def test_unknown_column_on_strict_channel_is_schema_drift(settings) -> None:
    land(settings, "web_orders", "drift.csv", web_csv(
        *[r + ",gold" for r in good_web_rows(3)], header=WEB_HEADER + ",loyalty_tier"))
    with pytest.raises(CdpError, match=r"schema drift.*loyalty_tier"):
        ingest(settings)
    assert lake_snapshot(settings) == {}


def test_unknown_column_on_non_strict_channel_is_kept_in_extra(settings) -> None:
    settings.channels["web_orders"].strict = False
    land(settings, "web_orders", "extra.csv", web_csv(
        *[r + ",gold" for r in good_web_rows(2)], header=WEB_HEADER + ",loyalty_tier"))
    ingest(settings)
    rows = raw_rows(settings, "web_orders", "order_id, _extra")
    assert [(r[0], json.loads(r[1])) for r in rows] == [
        ("W0000", {"loyalty_tier": "gold"}), ("W0001", {"loyalty_tier": "gold"})]
    assert_reconciled(settings)


def test_missing_optional_columns_load_as_null(settings) -> None:
    land(settings, "web_orders", "narrow.csv",
         "order_id,ordered_at,order_total\nW1,2024-03-01T10:00:00,5\n")
    ingest(settings)
    assert raw_rows(settings, "web_orders", "order_id, first_name, email_opt_in") == [
        ("W1", None, None)]
    assert_reconciled(settings)


def test_missing_required_column_fails_the_batch(settings) -> None:
    land(settings, "web_orders", "noid.csv", "ordered_at,order_total\n2024-03-01T10:00:00,5\n")
    with pytest.raises(CdpError, match=r"noid.csv: header lacks required columns.*order_id"):
        ingest(settings)
    assert lake_snapshot(settings) == {}


def test_ten_megabyte_field_is_quarantined_as_too_large(settings) -> None:
    huge = "x" * (10 * 1024 * 1024)
    land(settings, "web_orders", "huge.csv", web_csv(
        web_row("W1"), web_row("W2", last_name=huge), web_row("W3")))
    summary = ingest(settings)
    assert [r[0] for r in raw_rows(settings, "web_orders", "order_id")] == ["W1", "W3"]
    (row,) = quarantine_rows(settings, "web_orders", "_row_number, _reason, _column, length(_raw)")
    assert row[:3] == (2, "field too large", "last_name")
    assert row[3] > 10 * 1024 * 1024  # kept verbatim, not truncated
    figures = summary.figures["channels"]["web_orders"]
    assert (figures["rows_received"], figures["rows_loaded"], figures["rows_quarantined"]) == (
        3, 2, 1)
    assert_reconciled(settings)


def test_wrong_types_are_quarantined_per_row_with_the_column(settings) -> None:
    land(settings, "web_orders", "types.csv", web_csv(
        *good_web_rows(6),
        web_row("B1", items="three"),
        web_row("B2", total="12.345"),            # would round in DECIMAL(18,2)
        web_row("B3", ordered_at="01/03/2024"),   # not ISO 8601 (no format declared)
        web_row("B4", items="2.5"),
    ))
    ingest(settings)
    assert quarantine_rows(settings, "web_orders") == [
        (7, "wrong type", "item_count"), (8, "wrong type", "order_total"),
        (9, "wrong type", "ordered_at"), (10, "wrong type", "item_count")]
    assert len(raw_rows(settings, "web_orders")) == 6
    assert_reconciled(settings)


def test_booleans_accept_the_common_spellings(settings) -> None:
    header = "order_id,ordered_at,order_total,email_opt_in"
    spellings = ["true", "FALSE", "1", "0", "Yes", "no", "Y", "n", "", "maybe"]
    rows = [f"W{i},2024-03-01T10:00:00,1,{s}" for i, s in enumerate(spellings)]
    rows += [f"X{i},2024-03-01T10:00:00,1,true" for i in range(3)]
    land(settings, "web_orders", "bools.csv", "\n".join([header, *rows]) + "\n")
    ingest(settings)
    loaded = dict(raw_rows(settings, "web_orders", "order_id, email_opt_in"))
    assert [loaded[f"W{i}"] for i in range(9)] == [
        True, False, True, False, True, False, True, False, None]
    assert quarantine_rows(settings, "web_orders") == [(10, "wrong type", "email_opt_in")]
    assert_reconciled(settings)


def test_missing_required_values_are_quarantined(settings) -> None:
    land(settings, "web_orders", "req.csv", web_csv(
        *good_web_rows(4), web_row("W9", total=""), web_row("", total="3"),
        web_row("W8", ordered_at="  ")))
    ingest(settings)
    assert quarantine_rows(settings, "web_orders") == [
        (5, "missing required field", "order_total"), (6, "missing required field", "order_id"),
        (7, "missing required field", "ordered_at")]
    assert_reconciled(settings)


def test_too_many_and_too_few_fields_are_quarantined(settings) -> None:
    land(settings, "web_orders", "width.csv", web_csv(
        *good_web_rows(4), web_row("W8") + ",surplus", "W9,2024-03-01T10:00:00"))
    ingest(settings)
    assert quarantine_rows(settings, "web_orders", "_row_number, _reason, _detail") == [
        (5, "wrong number of fields", "expected 7 fields, got 8"),
        (6, "wrong number of fields", "expected 7 fields, got 2")]
    assert_reconciled(settings)


def test_duplicate_primary_keys_keep_the_first_and_quarantine_the_rest(settings) -> None:
    land(settings, "web_orders", "dups.csv", web_csv(
        web_row("W1", first_name="First"), web_row("W2"), web_row("W1", first_name="Second"),
        web_row("W3")))
    ingest(settings)
    assert raw_rows(settings, "web_orders", "order_id, first_name") == [
        ("W1", "First"), ("W2", "Ayşe"), ("W3", "Ayşe")]
    assert quarantine_rows(settings, "web_orders", "_row_number, _reason, _column, _detail") == [
        (3, "duplicate primary key in batch", "order_id", "first seen in row 1")]
    assert_reconciled(settings)


def test_empty_file_fails_but_header_only_file_is_an_empty_batch(settings) -> None:
    land(settings, "web_orders", "empty.csv", b"")
    land(settings, "web_orders", "header_only.csv", WEB_HEADER + "\n")
    with pytest.raises(CdpError, match=r"web_orders/empty.csv: empty file") as caught:
        ingest(settings)
    assert "header_only" not in str(caught.value)
    (entry,) = log_rows(settings, "web_orders")
    assert entry["file"] == "web_orders/header_only.csv" and entry["rows_received"] == 0
    assert raw_rows(settings, "web_orders") == []


def test_blank_lines_are_not_rows(settings) -> None:
    land(settings, "web_orders", "blank.csv",
         WEB_HEADER + "\n\n" + web_row("W1") + "\n\n\n" + web_row("W2") + "\n\n")
    ingest(settings)
    assert raw_rows(settings, "web_orders", "order_id, _row_number") == [("W1", 1), ("W2", 2)]
    assert_reconciled(settings)


def test_too_many_rejects_fail_the_batch_without_echoing_values(settings) -> None:
    land(settings, "web_orders", "bad.csv", web_csv(
        web_row("W1"), *[web_row(f"B{i}", email="ayse@example.com", total="oops")
                         for i in range(3)]))
    with pytest.raises(CdpError) as caught:
        ingest(settings)
    message = str(caught.value)
    assert "bad.csv: quarantine share above max_quarantine_share" in message
    assert "3 of 4 rows" in message and "wrong type" in message
    assert "oops" not in message and "ayse" not in message
    assert lake_snapshot(settings) == {}
