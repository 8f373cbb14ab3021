"""Identity resolution, scheduled on the raw assets of every channel (`cdp_identity`).

raw gates -> resolve -> identity gates -> publish the `identity` Asset. Resolution runs
`identity.resolve(settings)` (what `cdp resolve` runs) on `engine: duckdb`; on `engine: spark`
it is a spark-submit of `jobs/resolve_identity.py` through Airflow's Spark provider.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import Param, chain, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from cdp_dags import assets, common, gates

from cdp.config import CONFIG_ENV, Settings

SPARK_CONN_ID = "cdp_spark"
JOBS_DIR_ENV = "CDP_JOBS_DIR"
RESOLVE_JOB = "resolve_identity.py"

DOC = """
### Identity resolution

**Purpose**: turn the records of every channel into customers: standardise, deterministic
links with cardinality guards, Splink matching, clusters, stable customer ids, golden
profiles. Runs whenever any channel has new raw data.

**Owner**: {owner}  |  **Schedule**: any of the raw assets `raw_<channel>` (`|`)  |
**Engine**: `{engine}`

**Inputs**: the raw lake of every channel ({channels}).

**Steps**: `raw_gates` (Great Expectations raw gates) -> `resolve` ({resolve}) ->
`identity_gates` -> `publish`.

**Outputs**: the `identity` schema of the warehouse (identity_records, identity_links,
identity_clusters, golden_profiles); Asset `identity` (`{uri}`), published only after the
identity gates pass (skipped when an incremental run found nothing new); it schedules
`cdp_warehouse`. XCom: the resolve figures.

**Mode** (param `mode`, default `identity.scheduled_mode` of cdp.yaml): `full` recomputes
everything; `auto` links only new batches (`cdp resolve --incremental`) unless a full run is
due (none yet, the last older than `identity.full_resolve_every_days`, or the identity
settings changed); `incremental` forces it. Trigger with `{{"mode": "full"}}` to force a full
run. On `engine: spark` the job takes the mode as `--mode`.

**Engines**: on `engine: duckdb` the task calls `identity.resolve` in the worker. On
`engine: spark` it spark-submits `{jobs}/{job}` with `--config <cdp.yaml>`, the Spark conf of
`spark.conf` in cdp.yaml, and the master of the Airflow connection `{conn}` (e.g.
`AIRFLOW_CONN_CDP_SPARK='spark://spark-master:7077'`, or `local[*]` as its host). Either way
the run log (`identity.resolve_runs`) names the DAG run that asked (`trigger`
`airflow:<dag id>/<run id>`); on Spark, `publish` reads that run's figures from it.
"""


def jobs_dir() -> Path:
    """Where the PySpark entry points live: `$CDP_JOBS_DIR`, else the repository's jobs/."""
    return Path(os.environ.get(JOBS_DIR_ENV) or common.REPO_ROOT / "jobs")


def config_path() -> str:
    return str(Path(os.environ.get(CONFIG_ENV) or common.REPO_ROOT / "cdp.yaml").resolve())


# Who asked for a resolve run, as its run log records it: the DAG run (not a clock: the Spark
# driver's clock is not the scheduler's, and a `cdp resolve` run by hand in the meantime is
# not this DAG run's)
TRIGGER = "airflow:{dag_id}/{run_id}"


def dag_run_trigger(context: Any) -> str:
    """The trigger of the DAG run a task runs in (TRIGGER)."""
    return TRIGGER.format(dag_id=context["dag"].dag_id, run_id=context["run_id"])


def last_run_figures(settings: Settings, trigger: str) -> dict[str, Any]:
    """The figures of the last resolve run `trigger` asked for, from the warehouse's run log
    (`identity.resolve_runs`), or `up_to_date` when it logged none: what a spark-submit, which
    returns nothing to Airflow, did (an up-to-date incremental run logs nothing)."""
    from identity.state import read_last_run

    last = read_last_run(settings, trigger=trigger)
    if last is None:
        return {"up_to_date": True}
    return {**json.loads(last.get("figures") or "{}"), "customers": last.get("customers")}


def spark_resolve_task(settings: Settings) -> Any:
    """`engine: spark`: spark-submit of the identity job (jobs/resolve_identity.py)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from cdp.spark import spark_conf

    return SparkSubmitOperator(
        task_id="resolve",
        application=str(jobs_dir() / RESOLVE_JOB),
        conn_id=SPARK_CONN_ID,
        # cdp.yaml's spark.conf, the Splink jar and the tuned defaults (cdp/spark.py)
        conf=spark_conf(settings),
        application_args=["--config", config_path(), "--mode", "{{ params.mode }}",
                          "--trigger", TRIGGER.format(dag_id="{{ dag.dag_id }}",
                                                      run_id="{{ run_id }}")],
        env_vars={CONFIG_ENV: config_path(), "CDP_ENGINE": "spark"},
        name=f"{settings.project}-resolve-identity",
        pool=common.WAREHOUSE_POOL,
        **common.NETWORK_RETRIES,
    )


def build_dag(settings: Settings) -> Any:
    identity = assets.identity_asset(settings)
    spark = settings.engine == "spark"
    doc = DOC.format(
        owner=common.OWNER, engine=settings.engine, channels=", ".join(settings.channels),
        resolve="spark-submit" if spark else "`identity.resolve`", uri=identity.uri,
        jobs=jobs_dir(), job=RESOLVE_JOB, conn=SPARK_CONN_ID,
    )

    @dag(
        dag_id="cdp_identity",
        description="Identity resolution: raw lake -> customers and golden profiles",
        schedule=assets.any_of(assets.raw_assets(settings)),
        max_active_runs=1,
        params={"mode": Param(
            settings.identity.scheduled_mode, enum=["full", "auto", "incremental"],
            description="full: recompute everything; auto: incremental unless a full run "
                        "is due; incremental: only new batches")},
        **common.dag_kwargs(doc, tags=["identity", f"engine:{settings.engine}"],
                            deadline_hours=2),
    )
    def cdp_identity() -> None:
        @task
        def raw_gates() -> dict[str, Any]:
            return gates.run_gate("raw")

        @task(pool=common.WAREHOUSE_POOL)
        def resolve() -> dict[str, Any]:
            """What `cdp resolve` runs, in the run's `mode` (full, auto or incremental)."""
            from identity.schedule import resolve_in_mode

            current = common.settings()
            context = get_current_context()
            return common.run_step(lambda: resolve_in_mode(current, context["params"]["mode"],
                                                           dag_run_trigger(context)))

        @task
        def identity_gates() -> dict[str, Any]:
            return gates.run_gate("identity")

        @task(outlets=[identity])
        def publish() -> dict[str, Any]:
            """Announce new identity tables, with a few figures of the resolve run."""
            context = get_current_context()
            figures = context["ti"].xcom_pull(task_ids="resolve")
            if figures is None:  # spark-submit: the job's figures are in the run log
                figures = last_run_figures(common.settings(), dag_run_trigger(context))
            if figures.get("up_to_date"):  # an incremental run found no new batch
                raise AirflowSkipException("nothing new resolved: nothing to publish")
            extra = {key: figures[key] for key in ("customers", "records", "singletons")
                     if key in figures}
            get_current_context()["outlet_events"][identity].extra = extra
            return extra

        resolve_task = spark_resolve_task(settings) if spark else resolve()
        chain(raw_gates(), resolve_task, identity_gates(), publish())

    return cdp_identity()


cdp_identity_dag = build_dag(common.settings())
