"""The identity DAG on `engine: spark`, run for real with `dag.test()`.

Its `resolve` task is Airflow's SparkSubmitOperator: a real `spark-submit` of
`jobs/resolve_identity.py` (its own driver JVM, master `local[2]` from the `cdp_spark`
connection, conf from `cdp.spark.spark_conf`, `--mode` from the DAG's param), between the same
gates as on DuckDB. A small generated dataset is ingested first; the customers must be those of
the library run on DuckDB. A second run in auto mode finds nothing new and publishes nothing.

The DAG runs in a child process with an Airflow installation of its own (spark_dag_child.py):
its `identity` asset names another warehouse than the chain test's, and a metadata DB keeps one
active asset per name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cdp.config import load_settings
from tests.airflow.conftest import DAGS_FOLDER
from tests.conftest import REPO_ROOT, write_config

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]

SPARK_CONF = {"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"}


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _clusters(warehouse: Path) -> list[tuple]:
    return _rows(warehouse, "select source, source_record_id, customer_id "
                            "from identity.identity_clusters order by all")


def test_identity_dag_on_spark_submits_the_job_and_publishes(tmp_path: Path) -> None:
    import pyspark

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

    home = tmp_path / "airflow_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CDP_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "CDP_CONFIG": str(config),
        "CDP_ENGINE": "spark",
        # the provider runs `spark-submit` from PATH (it takes no path) with the master of its
        # connection; the job's Python workers are this interpreter
        "PATH": f"{Path(pyspark.__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYSPARK_PYTHON": sys.executable,
        "AIRFLOW_CONN_CDP_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(DAGS_FOLDER)]),
    })
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("spark_dag_child.py")), str(DAGS_FOLDER)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["import_errors"] == {} and "engine:spark" in report["tags"]
    tasks = ("raw_gates", "resolve", "identity_gates", "publish")
    assert report["states"]["first"] == dict.fromkeys(tasks, "success")
    assert report["states"]["auto"] == {**dict.fromkeys(tasks, "success"),
                                        "publish": "skipped"}
    warehouse = load_settings(config).resolved_paths.warehouse
    clusters = _clusters(warehouse)
    assert clusters and clusters == _clusters(tmp_path / "reference.duckdb")
    # the job's figures (from the run log) reach the asset event, as the DuckDB task's
    # return value does; the auto run logged no run and published nothing
    (extra,) = report["publish"]
    assert extra["customers"] == len({c for _, _, c in clusters if c is not None})
    assert extra["records"] > 0
    assert report["identity_events"] == [extra]
    # the job logged the DAG run that submitted it: publish found the run by that, not by time
    ((mode, trigger),) = _rows(warehouse, "select mode, json_extract_string(figures, "
                                          "'$.trigger') from identity.resolve_runs")
    assert mode == "full" and trigger.startswith("airflow:cdp_identity/")
