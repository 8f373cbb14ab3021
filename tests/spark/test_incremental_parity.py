"""`resolve --incremental` on Spark gives what it gives on DuckDB.

Each engine resolves 60 generated people in full, with 150 of their source rows held back;
the held-back rows then arrive as new batches and each engine links them incrementally. The
identity tables, the id history and the run's figures must be the same (Splink's match
weights to 1e-6, as in test_resolve_parity.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdp.config import Settings, load_settings
from cdp.generate.late import land_late_files, split_landing
from tests.conftest import write_config
from tests.spark.conftest import spark_settings

pytestmark = pytest.mark.spark

HELD_BACK = 150


def _incremental(settings: Settings, landing: Path) -> dict[str, Any]:
    """Full resolve, then the held-back rows landed, ingested and resolved incrementally."""
    from cdp.ingest import ingest
    from identity import resolve

    lake = load_settings(settings.root / "cdp.yaml", env={"CDP_ENGINE": "duckdb"})
    shutil.copytree(landing, lake.resolved_paths.landing)
    split_landing(lake.resolved_paths.landing, settings.root / "late", HELD_BACK, seed=4)
    ingest(lake)  # the lake is the same either way (tests/spark/test_ingest_parity.py)
    resolve(settings)
    land_late_files(lake.resolved_paths.landing, settings.root / "late")
    ingest(lake)
    return resolve(settings, incremental=True).figures


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from cdp.generate import generate

    source = load_settings(write_config(tmp_path_factory.mktemp("inc-source")), env={})
    generate(source, people=60, seed=13)
    landing = source.resolved_paths.landing
    duck = load_settings(write_config(tmp_path_factory.mktemp("inc-duckdb")), env={})
    on_spark = spark_settings(tmp_path_factory.mktemp("inc-spark"))
    return {"duckdb": (duck, _incremental(duck, landing)),
            "spark": (on_spark, _incremental(on_spark, landing))}


def test_same_identity_tables_after_an_incremental_run(runs: dict[str, Any]) -> None:
    (duck, _), (spark, _) = runs["duckdb"], runs["spark"]
    for table in ("identity_clusters", "identity_records", "golden_profiles",
                  "identity_identifiers", "customer_ids", "customer_id_history"):
        ours = _rows(duck, _comparable(duck, table))
        assert ours, table
        assert _rows(spark, _comparable(spark, table)) == ours, table


def _comparable(settings: Settings, table: str) -> str:
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = "
            "'identity' and table_name = ? order by ordinal_position", [table]).fetchall()]
    # run ids and times are each run's own; the evidence of a history event holds weights
    kept = [c for c in columns if not c.endswith(("_run", "run_id", "_at"))
            and c not in ("evidence",)]
    return f"select {', '.join(kept)} from identity.{table} order by all"


def test_same_links_with_weights_equal_but_for_rounding(runs: dict[str, Any]) -> None:
    (duck, _), (spark, _) = runs["duckdb"], runs["spark"]
    sql = """select record_l, record_r, link_type, round(match_weight, 6),
                    round(match_probability, 6), refused_by, same_customer
             from identity.identity_links order by all"""
    assert _rows(spark, sql) == _rows(duck, sql)


def test_same_incremental_figures(runs: dict[str, Any]) -> None:
    (_, duck), (_, spark) = runs["duckdb"], runs["spark"]
    assert spark["new_batches"] == duck["new_batches"] > 0
    for key in ("rows_in", "ids", "attached_records", "new_records", "records_reclustered",
                "customers_touched", "customers", "rows_written", "model"):
        assert spark[key] == duck[key], key
    assert duck["ids"]["created"] + duck["attached_records"] > 0
