"""The same dbt project on Spark (dbt-spark, `method: session`, local SparkSession).

Every model (staging, intermediate, marts, segments, membership) is built on Spark from the demo
lake and must give the same row counts, segment sizes and omnichannel figure as the DuckDB
build of the same data. Data tests and unit tests run on DuckDB (tests/dbt/test_build_duckdb.py);
here only models run, to keep Spark's per-query overhead inside the test budget.

The build runs in a child process: its JVM, catalog and settings stay out of the test session
(other Spark tests create sessions with their own configuration).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.config import Settings, load_settings
from tests.conftest import write_config
from tests.dbt.conftest import Built
from tests.dbt.test_build_duckdb import _copy_of

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import json, sys
from cdp.build import build
from cdp.config import load_settings
from cdp.errors import CdpError
try:
    summary = build(load_settings(sys.argv[1], env={}), resource_types=("model",))
except CdpError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(1)
print(json.dumps(summary.figures))
"""


def _spark_settings(built: Built, demo_settings: Settings, folder: Path) -> Settings:
    """The demo lake, a copy of the built warehouse (identity tables), target spark."""
    copy = _copy_of(built, demo_settings, folder)
    demo = demo_settings.resolved_paths
    config = write_config(folder, paths={
        "data_dir": str(copy.resolved_paths.data_dir), "landing": str(demo.landing),
        "lake": str(demo.lake), "truth": str(demo.truth)},
        warehouse={"target": "spark", "dbt_project_dir": str(REPO / "dbt")},
        spark={"master": "local[2]", "conf": {
            # small data: one shuffle partition, no adaptive re-planning, no codegen warm-up
            "spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false", "spark.ui.enabled": "false",
            # a one-off build needs no persistent metastore
            "spark.sql.catalogImplementation": "in-memory"}})
    return load_settings(config, env={})


def test_every_model_builds_on_spark_with_the_duckdb_results(
        built: Built, demo_settings: Settings, tmp_path: Path) -> None:
    settings = _spark_settings(built, demo_settings, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "cdp.yaml")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-3000:])
    spark = json.loads(lines[-1])

    model_files = list((REPO / "dbt" / "models").rglob("*.sql"))
    assert spark["nodes"]["model"] == {"passed": len(model_files), "failed": 0, "skipped": 0,
                                       "warned": 0}
    assert spark["rows"] == built.summary.figures["rows"]
    assert spark["as_of_date"] == built.summary.figures["as_of_date"]
    assert spark["omnichannel_spend_index"] == built.summary.figures["omnichannel_spend_index"]
    # the tables really are Spark's: written under the configured Spark warehouse
    warehouse = settings.resolved_paths.data_dir / "spark" / "warehouse"
    assert any(warehouse.rglob("*.parquet"))
