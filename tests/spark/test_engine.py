"""The Spark engine's working tables: what is materialised, what stays a view, and Parquet
schemas read from the files' footers. (The whole pipeline against DuckDB: test_*_parity.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.spark.conftest import spark_settings

pytestmark = pytest.mark.spark


@pytest.fixture
def engine(spark: Any, tmp_path: Path) -> Iterator[Any]:
    from identity.engines.spark import SparkEngine

    engine = SparkEngine(spark_settings(tmp_path), spark=spark)
    yield engine
    engine.close()


def _jobs(spark: Any) -> int:
    ids = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    return max(ids) + 1 if ids else 0


def test_a_single_use_table_is_a_view_computed_by_its_reader(engine: Any, spark: Any) -> None:
    engine.from_arrow("people", pa.table({"name": ["ayşe", "can", "deniz"],
                                          "age": [31, 17, 45]}))
    started = _jobs(spark)
    engine.create_table("adults", "select name from people where age >= ?", [18],
                        single_use=True)
    assert _jobs(spark) == started  # neither the Arrow table nor the view ran a job
    engine.drop_table("people")  # the view keeps its plan: its sources may go first
    names = engine.to_arrow("select name from adults order by name").column("name")
    assert names.to_pylist() == ["ayşe", "deniz"]


def test_a_table_read_again_is_materialised_once(engine: Any, spark: Any) -> None:
    engine.from_arrow("n", pa.table({"x": list(range(10))}))
    started = _jobs(spark)
    engine.create_table("evens", "select x from n where x % 2 = 0")
    assert _jobs(spark) > started  # computed now, not by each reader
    engine.drop_table("n")
    assert engine.scalar("select sum(x) from evens") == 20
    assert engine.scalar("select count(*) from evens") == 5


def _write(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_parquet_schema_from_footers_matches_sparks_own(engine: Any, spark: Any,
                                                        tmp_path: Path) -> None:
    from datetime import date, datetime
    from decimal import Decimal

    table = pa.table({
        "id": pa.array(["a", "b"]), "n": pa.array([1, 2], pa.int64()),
        "ok": pa.array([True, None]), "day": pa.array([date(2024, 1, 2), None]),
        "at": pa.array([datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
        "amount": pa.array([Decimal("1.50"), None], pa.decimal128(18, 2))})
    files = [_write(tmp_path / f"lake/{i}.parquet", table) for i in range(2)]
    engine.register_parquet("same", files)
    inferred = spark.read.option("mergeSchema", "true").parquet(*map(str, files)).schema
    assert spark.table("same").schema == inferred
    assert engine.scalar("select count(*) from same") == 4


def test_parquet_files_with_different_columns_are_unified_by_name(engine: Any,
                                                                  tmp_path: Path) -> None:
    first = _write(tmp_path / "lake/1.parquet", pa.table({"id": ["a"], "email": ["a@x.com"]}))
    second = _write(tmp_path / "lake/2.parquet", pa.table({"phone": ["+90"], "id": ["b"]}))
    engine.register_parquet("mixed", [first, second])
    rows = engine.to_arrow("select id, email, phone from mixed order by id").to_pylist()
    assert rows == [{"id": "a", "email": "a@x.com", "phone": None},
                    {"id": "b", "email": None, "phone": "+90"}]
