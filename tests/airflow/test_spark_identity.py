"""The identity DAG on `engine: spark`, run for real with `dag.test()`.

Its `resolve` task is Airflow's SparkSubmitOperator: a real `spark-submit` of
`jobs/resolve_identity.py` (its own driver JVM, master `local[2]` from the `cdp_spark`
connection, conf from `cdp.spark.spark_conf`, `--mode` from the DAG's param), between the same
gates as on DuckDB. A small generated dataset is ingested first; the customers must be those of
the library run on DuckDB. A second run in auto mode finds nothing new and publishes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import duckdb
import pytest

from cdp.config import load_settings
from tests.airflow.conftest import DAGS_FOLDER, AirflowEnv
from tests.airflow.test_end_to_end import dag_test_mode, run, xcom
from tests.conftest import write_config

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]

SPARK_CONF = {"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"}


def _clusters(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select source, source_record_id, customer_id "
                           "from identity.identity_clusters order by all").fetchall()


def _runs(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select mode, customers from identity.resolve_runs "
                           "order by run_id").fetchall()


def test_identity_dag_on_spark_submits_the_job_and_publishes(
        tmp_path: Path, airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark
    from airflow.dag_processing.dagbag import DagBag

    from cdp.generate import generate
    from cdp.ingest import ingest
    from identity import resolve

    config = write_config(tmp_path, engine="spark",
                          spark={"master": "local[2]", "conf": SPARK_CONF})
    # the lake is filled on DuckDB; a library run on DuckDB into its own warehouse is the
    # reference
    local = load_settings(config, env={"CDP_ENGINE": "duckdb"})
    generate(local, people=25, seed=9)
    ingest(local)
    reference = load_settings(config, env={"CDP_ENGINE": "duckdb",
                                           "CDP_WAREHOUSE": str(tmp_path / "reference.duckdb")})
    resolve(reference)

    monkeypatch.setenv("CDP_CONFIG", str(config))
    monkeypatch.setenv("CDP_ENGINE", "spark")
    # the provider runs `spark-submit` from PATH (it accepts no path) with the master of its
    # connection; the job's Python workers are this interpreter
    monkeypatch.setenv("PATH", f"{Path(pyspark.__file__).parent / 'bin'}{os.pathsep}"
                               f"{os.environ['PATH']}")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("AIRFLOW_CONN_CDP_SPARK",
                       json.dumps({"conn_type": "spark", "host": "local[2]"}))
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "cdp_identity.py"), bundle_path=DAGS_FOLDER,
                 bundle_name="dags-folder")
    assert bag.import_errors == {}
    dag = bag.dags["cdp_identity"]
    assert "engine:spark" in dag.tags
    with dag_test_mode(bag):
        dag_run = run(bag, "cdp_identity")
        # in auto mode with nothing new the job runs incremental and writes nothing: nothing
        # is published
        auto_run = run(bag, "cdp_identity", run_conf={"mode": "auto"})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == dict.fromkeys(("raw_gates", "resolve", "identity_gates", "publish"),
                                   "success")
    settings = load_settings(config)
    clusters = _clusters(settings.resolved_paths.warehouse)
    assert clusters and clusters == _clusters(tmp_path / "reference.duckdb")
    # the job's figures (from the run log) reach the asset event's extra, as the DuckDB
    # task's return value does. (The event itself is checked in test_end_to_end: here the
    # `identity` asset has another warehouse's URI than the one the chain registered.)
    (extra,) = xcom(dag_run, "publish")
    assert extra["customers"] == len({c for _, _, c in clusters if c is not None})
    assert extra["records"] > 0
    assert auto_run.get_task_instance("resolve").state == "success"
    assert auto_run.get_task_instance("publish").state == "skipped"
    runs = _runs(settings.resolved_paths.warehouse)
    assert [mode for mode, _ in runs] == ["full"]  # the up-to-date run logged nothing
