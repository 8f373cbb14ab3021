"""JSON lines and Parquet channels: per-line problems, strict vs non-strict keys, typed Parquet,
truncated Parquet and schema drift."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.errors import CdpError
from cdp.ingest import ingest
from tests.ingest.helpers import (
    assert_reconciled,
    lake_snapshot,
    land,
    quarantine_rows,
    raw_rows,
)


def event(i: int, **fields: object) -> dict:
    return {"event_id": f"E{i}", "event_time": "2024-03-01T10:00:00Z", "event_type": "app_open",
            "device_id": f"D{i}", **fields}


def jsonl(*records: dict | str) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                     for r in records) + "\n"


def test_jsonl_loads_typed_and_quarantines_bad_lines(settings) -> None:
    land(settings, "app_events", "events.jsonl", jsonl(
        event(1, revenue=19.99, push_opt_in="yes", user_name="Çağrı Öztürk"),
        event(2, revenue="7", push_opt_in=False, user_name=None),
        '{"event_id": "E3", "event_time": ',           # cut mid-object
        "[1, 2, 3]",                                   # JSON, but not an object
        event(4, revenue="a lot"),
        event(5, event_type=""),
        event(6), event(7), event(8), event(9),
    ))
    ingest(settings, ["app_events"])
    rows = raw_rows(settings, "app_events",
                    "event_id, event_time, revenue, push_opt_in, user_name, _row_number")
    assert rows[:2] == [
        ("E1", datetime(2024, 3, 1, 10, 0), Decimal("19.99"), True, "Çağrı Öztürk", 1),
        ("E2", datetime(2024, 3, 1, 10, 0), Decimal("7.00"), False, None, 2)]
    assert [r[5] for r in rows] == [1, 2, 7, 8, 9, 10]
    assert quarantine_rows(settings, "app_events", "_row_number, _reason, _column, _raw") == [
        (3, "unparseable line", None, '{"event_id": "E3", "event_time": '),
        (4, "unparseable line", None, "[1, 2, 3]"),
        (5, "wrong type", "revenue", json.dumps(event(4, revenue="a lot"))),
        (6, "missing required field", "event_type", json.dumps(event(5, event_type="")))]
    assert_reconciled(settings)


def test_jsonl_unknown_keys_kept_when_not_strict_quarantined_when_strict(settings) -> None:
    records = [event(i) for i in range(4)] + [event(9, app_version="5.1")]
    land(settings, "app_events", "a.jsonl", jsonl(*records))
    ingest(settings, ["app_events"])  # app_events is not strict
    assert raw_rows(settings, "app_events", "event_id, _extra")[-1] == (
        "E9", '{"app_version": "5.1"}')

    settings.channels["app_events"].strict = True
    land(settings, "app_events", "b.jsonl", jsonl(*[event(i + 10) for i in range(4)],
                                                  event(19, app_version="5.1")))
    ingest(settings, ["app_events"])
    assert quarantine_rows(settings, "app_events", "_row_number, _reason, _column") == [
        (5, "unknown column", "app_version")]
    assert_reconciled(settings)


def test_jsonl_bad_encoding_line_is_quarantined_with_bytes_kept(settings) -> None:
    good = jsonl(*[event(i) for i in range(3)]).encode()
    bad = json.dumps(event(7, user_name="Ayşe"), ensure_ascii=False).encode().replace(
        "ş".encode(), "ş".encode("windows-1254")) + b"\n"
    land(settings, "app_events", "enc.jsonl", good + bad)
    ingest(settings, ["app_events"])
    (row,) = quarantine_rows(settings, "app_events", "_row_number, _reason, _raw")
    assert row[:2] == (4, "bad encoding") and '"user_name": "Ay\\xfee"' in row[2]
    assert_reconciled(settings)


def test_jsonl_with_only_blank_lines_is_an_empty_file(settings) -> None:
    land(settings, "app_events", "blank.jsonl", "\n  \n\n")
    with pytest.raises(CdpError, match="blank.jsonl: empty file"):
        ingest(settings, ["app_events"])
    assert lake_snapshot(settings) == {}


def members(n: int, **overrides: list) -> pa.Table:
    data = {
        "member_id": [f"M{i}" for i in range(n)],
        "card_number": [f"C{i:08d}" for i in range(n)],
        "first_name": ["İlkay"] * n,
        "joined_at": [datetime(2023, 5, 1, 12, 0)] * n,
        "points_balance": list(range(n)),
        "email_consent": [True] * n,
    }
    data.update(overrides)
    return pa.table(data)


def test_parquet_is_cast_and_validated_per_schema(settings) -> None:
    # Columns whose Parquet types differ from the config: strings holding integers, a null in
    # a required timestamp; then dates for a timestamp, floats for an integer, text booleans.
    first = members(6, points_balance=["0", "1", "2", "3", "7", "many"],
                    joined_at=[datetime(2023, 5, 1, 12, 0)] * 4 + [None, datetime(2023, 1, 1)])
    second = members(2, member_id=["N0", "N1"], joined_at=[date(2023, 6, 1), date(2023, 6, 2)],
                     points_balance=[3.0, 4.0], email_consent=["Y", "n"])
    pq.write_table(first, land(settings, "loyalty_members", "a.parquet", b""))
    pq.write_table(second, land(settings, "loyalty_members", "b.parquet", b""))
    ingest(settings, ["loyalty_members"])
    rows = raw_rows(settings, "loyalty_members",
                    "member_id, first_name, joined_at, points_balance, email_consent")
    assert rows == [
        ("M0", "İlkay", datetime(2023, 5, 1, 12), 0, True),
        ("M1", "İlkay", datetime(2023, 5, 1, 12), 1, True),
        ("M2", "İlkay", datetime(2023, 5, 1, 12), 2, True),
        ("M3", "İlkay", datetime(2023, 5, 1, 12), 3, True),
        ("N0", "İlkay", datetime(2023, 6, 1), 3, True),
        ("N1", "İlkay", datetime(2023, 6, 2), 4, False)]
    quarantined = quarantine_rows(settings, "loyalty_members",
                                  "_row_number, _reason, _column, _raw")
    assert [r[:3] for r in quarantined] == [
        (5, "missing required field", "joined_at"), (6, "wrong type", "points_balance")]
    assert json.loads(quarantined[1][3])["member_id"] == "M5"
    assert_reconciled(settings)


def test_truncated_parquet_fails_and_leaves_the_lake_as_it_was(settings) -> None:
    path = land(settings, "loyalty_members", "good.parquet", b"")
    pq.write_table(members(3), path)
    ingest(settings, ["loyalty_members"])
    before = lake_snapshot(settings)
    data = path.read_bytes()
    land(settings, "loyalty_members", "cut.parquet", data[: len(data) // 2])
    land(settings, "loyalty_members", "junk.parquet", b"this is not parquet at all")
    with pytest.raises(CdpError) as caught:
        ingest(settings, ["loyalty_members"])
    message = str(caught.value)
    assert "loyalty_members/cut.parquet: unreadable parquet" in message
    assert "loyalty_members/junk.parquet: unreadable parquet" in message
    assert lake_snapshot(settings) == before


def test_parquet_schema_drift_on_strict_channel_fails(settings) -> None:
    path = land(settings, "loyalty_members", "drift.parquet", b"")
    pq.write_table(members(2, favourite_colour=["red", "blue"]), path)
    with pytest.raises(CdpError, match=r"schema drift.*favourite_colour"):
        ingest(settings, ["loyalty_members"])
    assert lake_snapshot(settings) == {}
