"""The Spark engine against the DuckDB engine, on the same generated data.

One SparkSession (local[2], one shuffle partition, no UI) serves every test of this folder: a
JVM holds one session, and its start-up conf (the Splink jar above all) cannot change later. It
is package-scoped: stopped when this folder is done, so it never outlives it in the test run.
(The dbt Spark test builds in a child process, and the jobs test spark-submits: their JVMs are
their own.)

`parity` runs the pipeline twice on one landing folder (300 generated people plus hand-made bad
files): ingest + resolve on DuckDB, and ingest + resolve on Spark, each into its own lake and
warehouse. The tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdp.config import Settings, load_settings
from cdp.summary import StepSummary
from tests.conftest import write_config
from tests.ingest.helpers import land, web_csv, web_row

SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "1",  # small data: one partition per shuffle
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.enabled": "false",
}


def spark_settings(folder: Path, **paths: str) -> Settings:
    """A copy of cdp.yaml with engine spark, data in `folder` (paths may point elsewhere)."""
    return load_settings(write_config(
        folder, engine="spark", spark={"master": "local[2]", "conf": SPARK_TEST_CONF},
        paths={"data_dir": str(folder / "data"), **paths}), env={})


@pytest.fixture(scope="package")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    from cdp.spark import get_session

    # A session someone else started in this process is reused as it is (get_session adds the
    # Splink jar to it) and left running; ours is stopped when this folder is done.
    ours = SparkSession.getActiveSession() is None
    session = get_session(spark_settings(tmp_path_factory.mktemp("spark-session")), "cdp-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    if ours:
        session.stop()


@dataclass
class Run:
    """One engine's pass over the landing folder."""

    settings: Settings
    ingest: StepSummary
    ingest_error: str
    resolve: StepSummary


@dataclass
class Parity:
    landing: Path
    duckdb: Run
    spark: Run


def _bad_files(settings: Settings) -> None:
    """Rows for every quarantine reason the generator rarely makes, a file that fails as a
    whole, and a second delivery of a file already in the folder (same content)."""
    land(settings, "web_orders", "zz_bad_rows.csv", web_csv(
        *(web_row(f"GOOD{i:04d}") for i in range(8)),
        web_row("BAD0001"),
        web_row("BAD0002", ordered_at="not a time"),
        web_row("BAD0003", total="ten"),
        web_row("BAD0001", first_name="Again"),  # duplicate key in the batch
        "BAD0005,2024-03-01T10:00:00",  # too few fields
        web_row("", email="nokey@example.com"),  # required key missing
    ))
    land(settings, "sms_contacts", "zz_empty.csv", b"")
    first = sorted((settings.resolved_paths.landing / "carts").glob("*.csv"))[0]
    land(settings, "carts", "zz_resent_copy.csv", first.read_bytes())


def _run(settings: Settings) -> Run:
    from cdp.ingest import IngestError, ingest
    from identity import resolve

    try:
        ingested, error = ingest(settings), ""
    except IngestError as exc:  # the empty file fails as a whole, on both engines
        ingested, error = exc.summary, str(exc)
    return Run(settings, ingested, error, resolve(settings))


@pytest.fixture(scope="package")
def parity(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Parity:
    from cdp.generate import generate

    source = load_settings(write_config(tmp_path_factory.mktemp("parity-source")), env={})
    generate(source, people=300, seed=11)
    _bad_files(source)
    landing = source.resolved_paths.landing

    duck_folder = tmp_path_factory.mktemp("parity-duckdb")
    duck = load_settings(write_config(duck_folder, paths={
        "data_dir": str(duck_folder / "data"), "landing": str(landing)}), env={})
    on_spark = spark_settings(tmp_path_factory.mktemp("parity-spark"), landing=str(landing))
    return Parity(landing, _run(duck), _run(on_spark))
