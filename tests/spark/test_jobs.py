"""The `jobs/` entry points through a real `spark-submit`, as Airflow's Spark provider runs them.

A small generated dataset (20 people, every channel) goes landing -> raw lake with
`jobs/ingest.py` and raw lake -> identity tables with `jobs/resolve_identity.py`, each a
spark-submit of its own (its own driver JVM, `--conf` from `cdp.spark.spark_conf` as the DAG
passes it). The results must be those of the library run on DuckDB.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cdp import lake
from cdp.config import Settings, load_settings
from tests.conftest import REPO_ROOT, write_config

pytestmark = pytest.mark.spark

JOBS = REPO_ROOT / "jobs"


def _spark_submit(settings: Settings, job: str) -> subprocess.CompletedProcess[str]:
    import pyspark

    from cdp.spark import spark_conf

    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master",
               "local[2]", "--name", f"test-{job}"]
    for key, value in spark_conf(settings).items():
        command += ["--conf", f"{key}={value}"]
    command += [str(JOBS / job), "--config", str(settings.root / "cdp.yaml")]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "CDP_ENGINE": "spark"}
    env.pop("CDP_CONFIG", None)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                          cwd=settings.root)


def _clusters(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        return con.execute("select source, source_record_id, customer_id "
                           "from identity.identity_clusters order by all").fetchall()


def test_ingest_and_resolve_jobs_through_spark_submit(tmp_path: Path) -> None:
    from cdp.generate import generate
    from cdp.ingest import ingest
    from identity import resolve

    for folder in ("spark", "local"):
        (tmp_path / folder).mkdir()
    spark_settings = load_settings(write_config(
        tmp_path / "spark", spark={"master": "local[2]", "conf": {
            "spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"}}), env={})
    generate(spark_settings, people=20, seed=5)
    landing = spark_settings.resolved_paths.landing
    local = load_settings(write_config(tmp_path / "local", paths={
        "data_dir": str(tmp_path / "local" / "data"), "landing": str(landing)}), env={})
    ingest(local)
    resolve(local)

    done = _spark_submit(spark_settings, "ingest.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ingest" in done.stdout and "quarantined" in done.stdout
    received = lake.read_load_log(spark_settings).column("rows_received").to_pylist()
    assert sum(received) == sum(lake.read_load_log(local).column("rows_received").to_pylist())

    done = _spark_submit(spark_settings, "resolve_identity.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "customers out" in done.stdout
    assert _clusters(spark_settings) == _clusters(local)


def _job(name: str):  # noqa: ANN202 - a module loaded from its file
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_job_given_a_missing_config_exits_2_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ingest", "resolve_identity"):
        assert _job(name).main(["--config", str(tmp_path / "nope.yaml")]) == 2
        assert "nope.yaml does not exist" in capsys.readouterr().err
