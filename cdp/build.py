"""`cdp build`: run the dbt project (staging -> intermediate -> marts -> segments) and report.

dbt runs in this process through `dbtRunner` (`dbt build --project-dir dbt --profiles-dir dbt
--target <warehouse.target>`). Paths reach the dbt profile and sources through environment
variables read with `env_var()`, so the dbt project itself holds no path and no secret:

    CDP_WAREHOUSE_PATH        the DuckDB warehouse file (duckdb target)
    CDP_LAKE_DIR              the lake root: raw/<channel>/..., _meta/load_log/...
    CDP_SPARK_*               Spark master, warehouse dir, shuffle partitions (spark target)
    CDP_IDENTITY_EXPORT_DIR   identity tables as Parquet, for Spark (see `_export_identity`)

On Postgres the lake and identity tables are first copied into the database (see
cdp/build_postgres.py). Its credentials are never set here: export CDP_PG_HOST / CDP_PG_PORT /
CDP_PG_USER / DBT_ENV_SECRET_CDP_PG_PASSWORD / CDP_PG_DBNAME yourself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary

MARTS = ("dim_customers", "fct_orders", "fct_interactions", "customer_360", "channel_kpis",
         "omnichannel_comparison", "segment_membership", "segment_membership_changes",
         "segment_size_history")
IDENTITY_TABLES = ("identity_clusters", "golden_profiles")
# Quoted literals in database errors can be data values (e.g. "Could not convert string 'x'").
_QUOTED = re.compile(r"'(?:[^'\\]|\\.){1,200}'")


@dataclass
class NodeCounts:
    """Outcome counts of one kind of dbt node (models, data tests, unit tests)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    warned: int = 0

    def __str__(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return text + (f", {self.warned} warned" if self.warned else "")


@dataclass
class BuildOutcome:
    """What a dbt invocation did, in a form the summary and the error message use."""

    counts: dict[str, NodeCounts] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "node: message", redacted
    warnings: list[str] = field(default_factory=list)


def build(settings: Settings, select: str | None = None, resource_types: tuple[str, ...] = (),
          dbt_vars: dict[str, Any] | None = None) -> StepSummary:
    """`dbt build` of the warehouse on the configured target; a summary with node outcomes, row
    counts of the marts and of every segment, the omnichannel spend index and the time taken.

    `select` is a dbt node selection (e.g. "marts"); `resource_types` limits the node kinds
    (e.g. ("model",) builds without running tests); `dbt_vars` overrides project vars for this
    build (e.g. {"as_of_date": "2026-12-31"}).

    Raises CdpError naming the failing nodes (with dbt's message, redacted of quoted values)
    when anything fails, or when the lake / identity tables it needs are missing.
    """
    target = settings.warehouse.target
    project_dir = _project_dir(settings)
    started = time.perf_counter()
    with _dbt_environment(settings):
        if target in ("duckdb", "spark", "postgres"):
            _check_inputs(settings, project_dir)
        if target == "postgres":
            from cdp.build_postgres import load_sources

            load_sources(settings, _raw_sources(project_dir), IDENTITY_TABLES)
        if target == "spark":
            _export_identity(settings)
            _spark_session(settings)
        args = ["build", *_common_args(settings, project_dir)]
        if select:
            args += ["--select", select]
        for kind in resource_types:
            args += ["--resource-type", kind]
        if dbt_vars:
            args += ["--vars", json.dumps(dbt_vars)]
        result = _invoke(args)
        outcome = _outcome(result)
        if outcome.failures or not result.success:
            raise CdpError(_failure_message(outcome, result))
        if not any(kind in outcome.counts for kind in ("model", "test", "unit_test")):
            raise CdpError(f"the selection {select!r} matched no dbt model or test"
                           if select else "the dbt project has no model to build")
        seconds = time.perf_counter() - started
        segments = (dbt_vars or {}).get("segments") or _segment_names(settings)
        counts = _row_counts(settings, segments)

    summary = StepSummary(title=f"build (dbt, target {target})")
    for kind, label in (("model", "models"), ("test", "data tests"),
                        ("unit_test", "unit tests")):
        summary.add(label, str(outcome.counts.get(kind, NodeCounts())))
    for name, rows in counts.items():
        summary.add(name, rows)
    figures: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "nodes": {kind: vars(c) for kind, c in outcome.counts.items()},
        "rows": counts,
    }
    extra = _headline_figures(settings, counts)
    figures.update(extra)
    if "as_of_date" in extra:
        summary.add("as of", extra["as_of_date"])
    if extra.get("omnichannel_spend_index") is not None:
        summary.add("omnichannel spend vs single-channel",
                    f"{extra['omnichannel_spend_index']:.2f}x")
    summary.add("time", f"{seconds:,.1f} s")
    summary.notes += [f"warning: {w}" for w in outcome.warnings]
    summary.figures = figures
    return summary


def generate_docs(settings: Settings) -> Path:
    """`dbt docs generate` (after a build); returns the folder holding index.html and catalog."""
    project_dir = _project_dir(settings)
    with _dbt_environment(settings):
        if settings.warehouse.target == "spark":
            _spark_session(settings)
        result = _invoke(["docs", "generate", *_common_args(settings, project_dir)])
    if not result.success:
        raise CdpError(f"dbt docs generate failed: {_redact(str(result.exception or ''))}")
    return _target_path(settings)


# --- inputs and environment ----------------------------------------------------------------
def _project_dir(settings: Settings) -> Path:
    project_dir = settings.dbt_project_dir
    if not (project_dir / "dbt_project.yml").is_file():
        raise CdpError(f"no dbt project at {project_dir} (warehouse.dbt_project_dir in cdp.yaml)")
    return project_dir


def _target_path(settings: Settings) -> Path:
    return settings.resolved_paths.artefacts / "dbt" / "target"


def _common_args(settings: Settings, project_dir: Path) -> list[str]:
    logs = settings.resolved_paths.artefacts / "dbt" / "logs"
    return [
        "--project-dir", str(project_dir),
        "--profiles-dir", str(project_dir),
        "--target", settings.warehouse.target,
        "--target-path", str(_target_path(settings)),
        "--log-path", str(logs),
        # The console gets our summary; dbt's own log (node by node) goes to the log file.
        "--log-level", "none",
        "--log-level-file", "info",
        "--no-send-anonymous-usage-stats",
        "--no-use-colors",
    ]


def _spark_paths(settings: Settings) -> dict[str, Path]:
    from cdp.spark import spark_paths

    return spark_paths(settings)


def dbt_env_vars(settings: Settings) -> dict[str, str]:
    """The CDP_* variables the dbt profile and sources read (also used by the Airflow DAGs)."""
    paths = settings.resolved_paths
    spark = _spark_paths(settings)
    env = {
        "CDP_DBT_TARGET": settings.warehouse.target,
        "CDP_WAREHOUSE_PATH": str(paths.warehouse),
        "CDP_LAKE_DIR": str(paths.lake),
        "CDP_SPARK_MASTER": settings.spark.master,
        "CDP_SPARK_WAREHOUSE_DIR": str(spark["warehouse"]),
        "CDP_SPARK_SHUFFLE_PARTITIONS": settings.spark.conf.get(
            "spark.sql.shuffle.partitions", "8"),
        "CDP_IDENTITY_EXPORT_DIR": str(spark["identity"]),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    for name, value in env.items():
        # The paths are pasted into SQL string literals by the sources: refuse a quote.
        if "'" in value or "`" in value:
            raise CdpError(f"{name} must not contain quotes (check the paths in cdp.yaml)")
    return env


@contextlib.contextmanager
def _dbt_environment(settings: Settings) -> Iterator[None]:
    """Set the CDP_* variables the dbt profile and sources read; restore them afterwards."""
    env = dbt_env_vars(settings)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _raw_sources(project_dir: Path) -> list[str]:
    """The channel tables the dbt project reads from the raw lake (its `raw` source)."""
    sources = yaml.safe_load((project_dir / "models" / "staging" / "_sources.yml").read_text(
        encoding="utf-8"))
    for source in sources.get("sources", []):
        if source.get("name") == "raw":
            return [table["name"] for table in source.get("tables", [])]
    return []


def _check_inputs(settings: Settings, project_dir: Path) -> None:
    """Fail early, with the command to run, when the lake or the identity tables are missing."""
    paths = settings.resolved_paths
    empty = [name for name in _raw_sources(project_dir)
             if not any((paths.raw / name).glob("*/*.parquet"))]
    if empty:
        raise CdpError(f"the raw lake {paths.raw} has no data for: {', '.join(empty)}; "
                       "run `cdp ingest` first")
    if not any((paths.meta / "load_log").glob("*.parquet")):
        raise CdpError(f"no load log under {paths.meta}; run `cdp ingest` first")
    if not paths.warehouse.exists():
        raise CdpError(f"no warehouse at {paths.warehouse}; run `cdp resolve` first")
    import duckdb

    con = duckdb.connect(str(paths.warehouse))  # same configuration as dbt-duckdb's
    try:
        found = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'identity'"
        ).fetchall()}
    finally:
        con.close()
    missing = [t for t in IDENTITY_TABLES if t not in found]
    if missing:
        raise CdpError(f"the warehouse has no identity.{', identity.'.join(missing)}; "
                       "run `cdp resolve` first")


def _export_identity(settings: Settings) -> None:
    """Spark reads the identity tables (kept in the DuckDB warehouse) as Parquet folders."""
    import duckdb

    from cdp.io import atomic_path

    folder = _spark_paths(settings)["identity"]
    con = duckdb.connect(str(settings.resolved_paths.warehouse))
    try:
        for table in IDENTITY_TABLES:
            with atomic_path(folder / table) as tmp:
                tmp.mkdir(parents=True)
                # table names are constants; the path is a parameter-free literal we checked
                con.execute(f"copy (select * from identity.{table}) to "
                            f"'{tmp / 'part-0.parquet'}' (format parquet)")
    finally:
        con.close()


def _spark_session(settings: Settings) -> Any:
    """The SparkSession dbt-spark's `session` method will pick up (getOrCreate), configured
    from cdp.yaml by `cdp.spark.get_session`: master, conf, and a Hive metastore and warehouse
    inside the data directory (so tables, and the incremental membership history, persist
    between builds). Setting `spark.sql.catalogImplementation: in-memory` in cdp.yaml skips the
    metastore (one-off runs)."""
    from cdp.spark import get_session

    return get_session(settings, "cdp-build")


# --- running dbt -----------------------------------------------------------------------------
def _invoke(args: list[str]) -> Any:
    from dbt.cli.main import dbtRunner

    try:
        with _progress() as on_event:
            return dbtRunner(callbacks=[on_event]).invoke(args)
    finally:
        _release_dbt_duckdb()


def _release_dbt_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the rest of the process.

    Otherwise this process can no longer open the warehouse read-only (DuckDB refuses a second
    configuration of an open file) and `cdp forget` cannot compact it after an in-process build.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing was opened
        return
    with DuckDBConnectionManager._LOCK:
        env, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if env is not None:
        env.close()


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """A progress line (nodes done) on a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda event: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("dbt build: {task.completed} nodes done"),
                  TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("dbt", total=None)

        def on_event(event: Any) -> None:
            if event.info.name == "NodeFinished":
                progress.advance(task)

        yield on_event


def _redact(message: str) -> str:
    """dbt / database messages without quoted literals (they can be data values, i.e. PII)."""
    return _QUOTED.sub("'…'", " ".join(message.split()))[:600]


def _outcome(result: Any) -> BuildOutcome:
    outcome = BuildOutcome()
    for item in getattr(result.result, "results", None) or []:
        node = item.node
        kind = str(getattr(node, "resource_type", "other"))
        counts = outcome.counts.setdefault(kind, NodeCounts())
        status = str(item.status)
        if status in ("success", "pass"):
            counts.passed += 1
        elif status == "warn":
            counts.passed += 1
            counts.warned += 1
            outcome.warnings.append(f"{node.name}: {_redact(item.message or '')}")
        elif status == "skipped":
            counts.skipped += 1
        else:
            counts.failed += 1
            outcome.failures.append(f"{kind} {node.name}: {_redact(item.message or status)}")
    return outcome


def _failure_message(outcome: BuildOutcome, result: Any) -> str:
    if outcome.failures:
        shown = "; ".join(outcome.failures[:8])
        more = len(outcome.failures) - 8
        tail = f"; and {more} more" if more > 0 else ""
        return f"dbt build failed ({len(outcome.failures)} nodes): {shown}{tail}"
    return f"dbt build failed: {_redact(str(result.exception or 'unknown error'))}"


# --- reporting ---------------------------------------------------------------------------------
def _segment_names(settings: Settings) -> list[str]:
    project = yaml.safe_load((_project_dir(settings) / "dbt_project.yml").read_text(
        encoding="utf-8"))
    return list(project.get("vars", {}).get("segments", []))


def _row_counts(settings: Settings, segments: list[str]) -> dict[str, int]:
    """Rows of every mart and segment that exists after the build (name -> rows)."""
    tables = [*MARTS, *(f"segment_{name}" for name in segments)]
    with _query(settings) as query:
        if query is None:
            return {}
        counts: dict[str, int] = {}
        for table in tables:
            with contextlib.suppress(Exception):  # a --select build may not have built it
                counts[table] = int(query(f"select count(*) from {{schema}}.{table}")[0][0])
        return counts


def _headline_figures(settings: Settings, counts: dict[str, int]) -> dict[str, Any]:
    """as_of_date and the omnichannel-vs-single-channel spend index, when the marts exist."""
    figures: dict[str, Any] = {}
    with _query(settings) as query:
        if query is None:
            return figures
        with contextlib.suppress(Exception):
            figures["as_of_date"] = str(
                query("select max(as_of_date) from {schema}.customer_360")[0][0])
        if counts.get("omnichannel_comparison"):
            rows = query("select spend_index, frequency_index, basket_index "
                         "from {schema}.omnichannel_comparison "
                         "where customer_type = 'omnichannel'")
            if rows and rows[0][0] is not None:
                figures["omnichannel_spend_index"] = float(rows[0][0])
                figures["omnichannel_frequency_index"] = float(rows[0][1])
                figures["omnichannel_basket_index"] = float(rows[0][2])
    return figures


@contextlib.contextmanager
def _query(settings: Settings) -> Iterator[Any]:
    """A `query(sql) -> rows` function on the target, `{schema}` in the SQL standing for the
    marts schema; None where build has no client."""
    target = settings.warehouse.target
    if target == "duckdb":
        import duckdb

        # Not read-only: dbt-duckdb may still hold the file in this process, and DuckDB refuses a
        # second connection to one file with a different configuration.
        con = duckdb.connect(str(settings.resolved_paths.warehouse))
        try:
            yield lambda sql: con.execute(sql.format(schema="main")).fetchall()
        finally:
            con.close()
    elif target == "spark":
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or _spark_session(settings)
        schema = os.environ.get("CDP_SPARK_SCHEMA", "cdp")
        yield lambda sql: [tuple(r) for r in spark.sql(sql.format(schema=schema)).collect()]
    elif target == "postgres":
        from cdp.build_postgres import query_function

        with query_function() as query:
            yield query
    else:
        yield None


