"""The DAGs folder parses cleanly and every DAG follows the team's policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdp.config import load_settings
from tests.airflow.conftest import DAGS_FOLDER, AirflowEnv, config_with

pytestmark = pytest.mark.airflow

DOC_SECTIONS = ("**Purpose**", "**Owner**", "**Inputs**", "**Outputs**")
WAREHOUSE_POOL = "cdp_warehouse"


def test_dags_folder_loads_without_import_errors(dagbag: Any, airflow_env: AirflowEnv) -> None:
    assert dagbag.import_errors == {}
    settings = airflow_env.settings
    expected = {f"cdp_ingest_{name}" for name in settings.channels} | {
        "cdp_identity", "cdp_warehouse", "cdp_activation", "cdp_demo_generate"}
    assert set(dagbag.dag_ids) == expected
    # cdp_dags/ is a helper package, ignored by the DAG processor (.airflowignore).
    parsed = {Path(stat.file).name for stat in dagbag.dagbag_stats}
    assert parsed == {p.name for p in DAGS_FOLDER.glob("*.py")}


def test_every_dag_follows_the_team_policy(dagbag: Any) -> None:
    from airflow.sdk.definitions.deadline import DeadlineAlert

    problems: list[str] = []
    for dag_id, dag in sorted(dagbag.dags.items()):
        if not dag.tags or "cdp" not in dag.tags:
            problems.append(f"{dag_id}: no tags / no 'cdp' tag")
        if dag.catchup:
            problems.append(f"{dag_id}: catchup is on")
        if not dag.doc_md or any(s not in dag.doc_md for s in DOC_SECTIONS):
            problems.append(f"{dag_id}: doc_md lacks one of {DOC_SECTIONS}")
        start = dag.start_date
        if start is None or start.utcoffset() != dt.timedelta(0) or "UTC" not in str(start.tzinfo):
            problems.append(f"{dag_id}: start_date {start!r} is not in UTC")
        if dag.default_args.get("owner") in (None, "", "airflow"):
            problems.append(f"{dag_id}: default_args has no owner")
        if not dag.on_failure_callback:
            problems.append(f"{dag_id}: no DAG failure callback")
        if not dag.deadline or not all(isinstance(d, DeadlineAlert) for d in dag.deadline):
            problems.append(f"{dag_id}: no deadline alert")
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            if task.owner in (None, "", "airflow"):
                problems.append(f"{where}: owner {task.owner!r}")
            if (task.retries or 0) < 1:
                problems.append(f"{where}: retries {task.retries}")
            if not task.on_failure_callback:
                problems.append(f"{where}: no failure alert")
    assert problems == []


def test_tasks_that_touch_the_network_back_off_exponentially(dagbag: Any) -> None:
    network = [dagbag.dags[d].get_task("ingest") for d in dagbag.dag_ids
               if d.startswith("cdp_ingest_")]
    network.append(dagbag.dags["cdp_activation"].get_task("sync"))
    for task in network:
        assert task.retries >= 3, task.task_id
        assert task.retry_exponential_backoff >= 2, task.task_id
        assert task.max_retry_delay is not None, task.task_id


def test_every_warehouse_writer_shares_the_single_slot_pool(dagbag: Any) -> None:
    """DuckDB allows one writing process per file: those tasks queue on one pool."""
    warehouse = dagbag.dags["cdp_warehouse"]
    writers = [dagbag.dags["cdp_identity"].get_task("resolve"),
               dagbag.dags["cdp_activation"].get_task("sync"),
               warehouse.get_task("publish_segments"), warehouse.get_task("cross_model_tests")]
    writers += [t for t in warehouse.tasks if t.task_id.startswith("dbt.")]
    assert {t.pool for t in writers} == {WAREHOUSE_POOL}


def test_assets_chain_ingestion_identity_warehouse_and_activation(
        dagbag: Any, airflow_env: AirflowEnv) -> None:
    from airflow.sdk import Asset, AssetAny

    settings = airflow_env.settings
    raw_names = set()
    for name in settings.channels:
        dag = dagbag.dags[f"cdp_ingest_{name}"]
        (raw,) = dag.get_task("publish").outlets
        assert raw.name == f"raw_{name}"
        assert raw.uri == (settings.resolved_paths.lake / "raw" / name).as_uri()
        raw_names.add(raw.name)
        assert dag.get_task("ingest").outlets == []  # only `publish` announces new data
    cron = {"@daily": "0 0 * * *", "@hourly": "0 * * * *"}
    assert dagbag.dags["cdp_ingest_app_events"].timetable.expression == cron[
        settings.channels["app_events"].schedule]

    identity = dagbag.dags["cdp_identity"]
    condition = identity.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {a.name for a in condition.objects} == raw_names
    (identity_asset,) = identity.get_task("publish").outlets
    assert identity_asset.name == "identity"

    warehouse = dagbag.dags["cdp_warehouse"]
    assert warehouse.timetable.asset_condition == identity_asset
    segments = {a.name for a in warehouse.get_task("publish_segments").outlets}
    registry = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text())
    assert segments == {f"segment_{s}" for s in registry["vars"]["segments"]}

    activation = dagbag.dags["cdp_activation"].timetable.asset_condition
    assert isinstance(activation, AssetAny)
    assert {a.name for a in activation.objects if isinstance(a, Asset)} == segments


def test_warehouse_has_one_dbt_build_task_per_model_in_dependency_order(
        dagbag: Any, airflow_env: AirflowEnv) -> None:
    manifest = json.loads(airflow_env.manifest.read_text(encoding="utf-8"))
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    warehouse = dagbag.dags["cdp_warehouse"]
    builds = {t.task_id: t for t in warehouse.tasks if t.task_id.startswith("dbt.")}
    assert {type(t).__name__ for t in builds.values()} == {"DbtBuildLocalOperator"}
    assert {tid.removeprefix("dbt.").removesuffix("_model_build") for tid in builds} == models
    # A model's task runs after the tasks of the models it reads.
    upstream = builds["dbt.segment_membership_model_build"].upstream_task_ids
    assert "dbt.segment_lapsed_customers_model_build" in upstream
    # Tests that read two sibling models run once both exist, then the gates, then publish.
    cross = warehouse.get_task("cross_model_tests")
    assert "relationships_fct_orders_customer_id__customer_id__ref_dim_customers_" in cross.select
    assert {"dbt.fct_orders_model_build", "dbt.dim_customers_model_build"} <= \
        warehouse.get_task("cross_model_tests").get_flat_relative_ids(upstream=True)
    assert warehouse.get_task("publish_segments").upstream_task_ids == {"mart_gates"}
    assert warehouse.get_task("mart_gates").upstream_task_ids == {"cross_model_tests"}


def test_a_channel_added_to_the_config_gets_its_own_ingestion_dag(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from airflow.dag_processing.dagbag import DagBag

    channels = yaml.safe_load(airflow_env.config.read_text(encoding="utf-8"))["channels"]
    channels["franchise_kiosk"] = {
        "description": "Franchise kiosk sales (semicolon CSV).",
        "path": "franchise_kiosk/*.csv", "format": "csv", "delimiter": ";",
        "schedule": "*/30 * * * *", "primary_key": "receipt", "strict": True,
        "columns": {"receipt": {"type": "string", "required": True},
                    "customer": {"type": "string"}, "phone": {"type": "string"}},
        "identity": {"full_name": "customer", "phone": "phone"},
    }
    config = config_with(tmp_path, channels=channels)
    monkeypatch.setenv("CDP_CONFIG", str(config))
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "cdp_ingest.py"), bundle_path=DAGS_FOLDER,
                 bundle_name="dags-folder")
    assert bag.import_errors == {}
    assert len(bag.dags) == len(channels)
    kiosk = bag.dags["cdp_ingest_franchise_kiosk"]
    assert kiosk.timetable.expression == "*/30 * * * *"
    assert "channel:franchise_kiosk" in kiosk.tags
    assert kiosk.get_task("publish").outlets[0].name == "raw_franchise_kiosk"

    identity = DagBag(dag_folder=str(DAGS_FOLDER / "cdp_identity.py"), bundle_path=DAGS_FOLDER,
                      bundle_name="dags-folder").dags["cdp_identity"]
    assert "raw_franchise_kiosk" in {a.name for a in identity.timetable.asset_condition.objects}


def test_spark_engine_resolves_through_spark_submit_with_the_configured_conf(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    monkeypatch.setenv("CDP_ENGINE", "spark")
    monkeypatch.setenv("CDP__SPARK__CONF__SPARK.EXECUTOR.MEMORY", "3g")
    settings = load_settings(airflow_env.config)
    assert settings.engine == "spark"
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "cdp_identity.py"), bundle_path=DAGS_FOLDER,
                 bundle_name="dags-folder")
    assert bag.import_errors == {}
    dag = bag.dags["cdp_identity"]
    resolve = dag.get_task("resolve")
    assert isinstance(resolve, SparkSubmitOperator)
    # cdp.yaml's spark.conf wins over the tuned defaults, and Splink's jar is always on it
    from cdp.spark import spark_conf, splink_jar

    assert resolve.conf == spark_conf(settings)
    assert settings.spark.conf.items() <= resolve.conf.items()
    assert resolve.conf["spark.executor.memory"] == "3g"
    assert resolve.conf["spark.sql.shuffle.partitions"] == settings.spark.conf[
        "spark.sql.shuffle.partitions"]
    assert splink_jar() in resolve.conf["spark.jars"].split(",")
    assert Path(splink_jar()).is_file()
    assert resolve.application.endswith("jobs/resolve_identity.py")
    assert Path(resolve.application).is_file()
    assert resolve._conn_id == "cdp_spark"
    assert resolve.application_args == ["--config", str(airflow_env.config.resolve()),
                                        "--mode", "{{ params.mode }}", "--trigger",
                                        "airflow:{{ dag.dag_id }}/{{ run_id }}"]
    assert dag.params["mode"] == settings.identity.scheduled_mode
    assert resolve.env_vars["CDP_ENGINE"] == "spark"
    assert resolve.pool == WAREHOUSE_POOL and resolve.retries >= 3
    # Same gates around it as on DuckDB.
    assert resolve.upstream_task_ids == {"raw_gates"}
    assert resolve.downstream_task_ids == {"identity_gates"}
    assert "engine:spark" in dag.tags
