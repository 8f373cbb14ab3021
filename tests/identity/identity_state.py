"""Helpers for the stable-id, override and incremental tests: a tiny lake of web orders whose
links are all deterministic (identifiers, no names unless a test needs them), and readers of
what a run left in the warehouse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from cdp.config import Settings, load_settings
from tests.conftest import write_config
from tests.identity.lake import write_batch

_batches = iter(range(1, 10_000))


def make_settings(folder: Path) -> Settings:
    return load_settings(write_config(folder), env={})


def order(order_id: str, email: str | None = None, phone: str | None = None,
          first: str | None = None, last: str | None = None, born: str | None = None,
          **extra: Any) -> dict[str, Any]:
    # each order ships to its own address, so no two orders collapse into one identity record
    extra.setdefault("shipping_address", f"Atatürk Cad. No:{order_id}")
    return dict(order_id=order_id, customer_email=email, phone=phone, first_name=first,
                last_name=last, birth_date=born, order_total=10, **extra)


def land(settings: Settings, *rows: dict[str, Any]) -> str:
    """One committed web_orders batch, ingested later than every batch before it."""
    return write_batch(settings, "web_orders", list(rows),
                       ingested_at=datetime(2025, 1, 1) + timedelta(hours=next(_batches)))


def _con(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)


def customers(settings: Settings) -> dict[str, str]:
    """`web_orders:W1` -> customer id."""
    con = _con(settings)
    try:
        rows = con.execute("select source, source_record_id, customer_id "
                           "from identity.identity_clusters").fetchall()
    finally:
        con.close()
    return {f"{s}:{r}": c for s, r, c in rows}


def rows(settings: Settings, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    con = _con(settings)
    try:
        return con.sql(sql, params=params).to_arrow_table().to_pylist()
    finally:
        con.close()


def history(settings: Settings) -> list[dict[str, Any]]:
    out = rows(settings, "select * from identity.customer_id_history "
                         "order by run_id, event, customer_id, other_customer_id")
    for row in out:
        row["evidence"] = json.loads(row["evidence"])
    return out


def registry(settings: Settings) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in rows(settings, "select * from identity.customer_ids")}


def snapshot(settings: Settings) -> dict[str, list]:
    """Every identity table's rows (sorted), to compare two states of the warehouse."""
    out = {}
    con = _con(settings)
    try:
        for table in ("identity_records", "identity_clusters", "identity_links",
                      "golden_profiles", "identity_identifiers", "customer_ids",
                      "customer_id_history"):
            out[table] = sorted(map(repr, con.execute(
                f"select * from identity.{table}").fetchall()))
    finally:
        con.close()
    return out


INVARIANTS = {
    "duplicate record keys": "select count(*) - count(distinct record_key) "
                             "from identity.identity_records",
    "source record in two customers": "select count(*) - count(distinct (source, "
                                      "source_record_id)) from identity.identity_clusters",
    "customer without golden profile": """
        select count(distinct customer_id) from identity.identity_clusters
        where customer_id not in (select customer_id from identity.golden_profiles)""",
    "golden profile without records": """
        select count(*) from identity.golden_profiles
        where customer_id not in (select customer_id from identity.identity_clusters)""",
    "record and rows disagree on customer": """
        select count(*) from identity.identity_clusters c
        join identity.identity_records r using (record_key)
        where r.customer_id is distinct from c.customer_id""",
    "row without record": """
        select count(*) from identity.identity_clusters
        where record_key not in (select record_key from identity.identity_records)""",
    "record row count wrong": """
        select count(*) from identity.identity_records r
        join (select record_key, count(*) as n from identity.identity_clusters group by 1) c
          using (record_key) where r.n_rows <> c.n""",
    "resolved record without rows": """
        select count(*) from identity.identity_records where status = 'resolved'
        and record_key not in (select record_key from identity.identity_clusters)""",
    "golden record count wrong": """
        select count(*) from identity.golden_profiles g
        join (select customer_id, count(*) as n from identity.identity_clusters group by 1) c
          using (customer_id) where g.record_count <> c.n""",
    "link to a missing record": """
        select count(*) from identity.identity_links
        where record_l not in (select record_key from identity.identity_records)
           or record_r not in (select record_key from identity.identity_records)""",
    "same_customer flag wrong": """
        select count(*) from identity.identity_links l
        join identity.identity_records a on a.record_key = l.record_l
        join identity.identity_records b on b.record_key = l.record_r
        where l.same_customer <> coalesce(a.customer_id = b.customer_id, false)""",
    "active ids and customers differ": """
        select count(*) from (
            (select customer_id from identity.customer_ids where status = 'active'
             except select customer_id from identity.golden_profiles)
            union all
            (select customer_id from identity.golden_profiles
             except select customer_id from identity.customer_ids where status = 'active'))""",
}


def assert_consistent(settings: Settings) -> None:
    """The identity tables agree with each other (what every run, full or incremental, must
    leave behind)."""
    con = _con(settings)
    try:
        broken = {name: n for name, sql in INVARIANTS.items()
                  if (n := con.execute(sql).fetchall()[0][0])}
    finally:
        con.close()
    assert not broken, broken
