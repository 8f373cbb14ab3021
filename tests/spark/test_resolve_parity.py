"""Identity resolution on Spark gives the customers and golden profiles of DuckDB.

Each engine resolved the lake it ingested itself (see conftest.py), so this is the whole
pipeline up to the identity store, engine against engine. Match weights may differ in their last
digits (floating point in another order); everything else must be identical.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pytest

from cdp.config import Settings
from tests.spark.conftest import Parity

pytestmark = pytest.mark.spark


def _table(settings: Settings, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _partition(settings: Settings) -> set[frozenset[tuple[str, str]]]:
    members: dict[str, set[tuple[str, str]]] = {}
    for row in _table(settings, "select customer_id, source, source_record_id "
                                "from identity.identity_clusters"):
        members.setdefault(row["customer_id"], set()).add(
            (row["source"], row["source_record_id"]))
    return {frozenset(m) for m in members.values()}


def test_same_customers(parity: Parity) -> None:
    duck = _partition(parity.duckdb.settings)
    assert len(duck) > 200 and any(len(m) > 3 for m in duck)
    assert _partition(parity.spark.settings) == duck
    sql = "select * from identity.identity_clusters order by source, source_record_id"
    assert _table(parity.spark.settings, sql) == _table(parity.duckdb.settings, sql)


def test_same_golden_profiles(parity: Parity) -> None:
    sql = "select * from identity.golden_profiles order by customer_id"
    duck = _table(parity.duckdb.settings, sql)
    spark = _table(parity.spark.settings, sql)
    assert len(duck) == parity.duckdb.resolve.figures["customers"]
    assert spark == duck


def test_same_identity_records_and_identifier_classes(parity: Parity) -> None:
    for sql in ("select * from identity.identity_records order by record_key",
                "select * from identity.identity_identifiers order by kind, value"):
        assert _table(parity.spark.settings, sql) == _table(parity.duckdb.settings, sql), sql


def test_same_links_with_weights_equal_but_for_rounding(parity: Parity) -> None:
    sql = "select * from identity.identity_links order by record_l, record_r, link_type"
    duck = _table(parity.duckdb.settings, sql)
    spark = _table(parity.spark.settings, sql)
    assert any(row["link_type"] == "splink" for row in duck)
    numbers = ("match_weight", "match_probability")
    assert [{k: v for k, v in r.items() if k not in numbers} for r in spark] == \
        [{k: v for k, v in r.items() if k not in numbers} for r in duck]
    for s, d in zip(spark, duck, strict=True):
        for k in numbers:
            assert (s[k] is None) == (d[k] is None), k
            if d[k] is not None:
                assert math.isclose(s[k], d[k], rel_tol=1e-6, abs_tol=1e-6), (k, s[k], d[k])


def test_same_summary_figures(parity: Parity) -> None:
    def figures(summary: Any) -> dict[str, Any]:
        return {k: v for k, v in summary.figures.items()
                if k not in ("seconds", "seconds_total", "run_id")}

    assert figures(parity.spark.resolve) == figures(parity.duckdb.resolve)
