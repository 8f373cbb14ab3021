"""The child process of test_spark_identity.py: `dag.test()` of `cdp_identity` on Spark.

It runs in an Airflow installation of its own (AIRFLOW_HOME and metadata DB set by the parent):
the `identity` asset it publishes has another warehouse's URI than the one the chain test of
this package registers, and active asset names are unique in a metadata DB. Prints a JSON
report of the runs on its last line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(dags_folder: str) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    from tests.airflow.dag_runs import asset_events, dag_test_mode, run, xcom

    db.upgradedb()
    bag = DagBag(dag_folder=str(Path(dags_folder) / "cdp_identity.py"),
                 bundle_path=Path(dags_folder), bundle_name="dags-folder")
    dag = bag.dags["cdp_identity"]
    with dag_test_mode(bag):
        first = run(bag, "cdp_identity")
        # auto mode with nothing new: the job runs incremental and writes nothing
        auto = run(bag, "cdp_identity", run_conf={"mode": "auto"})
    report = {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "tags": sorted(dag.tags),
        "states": {name: {ti.task_id: str(ti.state) for ti in r.get_task_instances()}
                   for name, r in (("first", first), ("auto", auto))},
        "publish": xcom(first, "publish"),
        "identity_events": asset_events().get("identity", []),
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
