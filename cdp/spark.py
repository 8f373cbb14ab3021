"""The one place where configuration becomes a SparkSession (or a spark-submit conf).

Every Spark user of the platform goes through here: the Spark engine of ingestion and identity
resolution, the `jobs/` entry points, the dbt Spark target (`cdp.build`) and the Airflow
identity DAG's spark-submit. A JVM holds one SparkContext, and `getOrCreate` hands back the
running session with its start-up conf, so whoever starts it must start it right: with Splink's
similarity-function jar, the tuned defaults below, and (for the dbt Spark target) the metastore.

Precedence: `spark.conf` in cdp.yaml wins over the defaults here; `spark.jars` is merged (the
Splink jar is always added).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdp.config import Settings
from cdp.summary import StepSummary

# Defaults tuned for Splink's generated SQL (benchmarks/bench_engines.py; figures and what each
# knob did in jobs/README.md). cdp.yaml's `spark.conf` overrides any of them.
TUNED_DEFAULTS: dict[str, str] = {
    # Adaptive execution re-plans each query in extra jobs after every shuffle: Splink's
    # training ran 284 Spark jobs with it, 116 without, on 10k records. Turn it on for large,
    # skewed data on a cluster (spark.sql.adaptive.enabled: "true" in cdp.yaml).
    "spark.sql.adaptive.enabled": "false",
    # Small tables (identifier classes, trust ranks, term frequencies) are joined by broadcast.
    "spark.sql.autoBroadcastJoinThreshold": str(64 * 1024 * 1024),
    # The lake's timestamps are naive UTC (as DuckDB reads them): the session clock is UTC.
    "spark.sql.session.timeZone": "UTC",
    # Arrow moves tables between the driver's Python and the JVM (to_arrow / from_arrow).
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
# On a local master the driver JVM is the whole cluster; Spark's 1g ran out of memory at 100k
# records.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.memory": "3g",
    # JIT with the quick compiler (C1) only. A local run is a short-lived JVM that plans ~100
    # queries and compiles ~1,000 generated classes, most of them run once on small data: the
    # optimising compiler (C2) spent ~50 s of CPU at 100k records (more than the tasks), on 2
    # cores beside the work. Without it: JVM CPU 131 -> 93 s, resolve 74 -> 65 s at 100k
    # (jobs/README.md). A long-running cluster executor keeps C2 (not set there).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


def splink_jar() -> str:
    """Path of Splink's Scala similarity functions (jaro_winkler, damerau_levenshtein...)."""
    from splink.backends.spark import similarity_jar_location

    return similarity_jar_location()


def is_local(master: str) -> bool:
    return master.startswith("local")


def spark_paths(settings: Settings) -> dict[str, Path]:
    """Spark's folders inside the data directory: warehouse and metastore of the dbt target,
    identity tables exported for dbt-spark, and checkpoints of the Spark engine."""
    base = settings.resolved_paths.data_dir / "spark"
    return {"warehouse": base / "warehouse", "metastore": base / "metastore",
            "identity": base / "identity", "checkpoints": base / "checkpoints"}


def uses_metastore(settings: Settings) -> bool:
    """A persistent Hive metastore is set up only for the dbt Spark target (its tables and the
    incremental membership history persist between builds); everything else uses the in-memory
    catalog, which starts in no time and takes no lock."""
    return (settings.warehouse.target == "spark"
            and settings.spark.conf.get("spark.sql.catalogImplementation", "hive") == "hive")


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark conf of every CDP session and spark-submit: tuned defaults, the Splink jar,
    cdp.yaml's `spark.conf` on top, and on a local master the Python that runs this code for
    the Python workers (on a cluster set `spark.pyspark.python` in cdp.yaml)."""
    local = is_local(settings.spark.master)
    conf = {**TUNED_DEFAULTS, **(LOCAL_DEFAULTS if local else {}), **settings.spark.conf}
    jars = [j for j in settings.spark.conf.get("spark.jars", "").split(",") if j]
    conf["spark.jars"] = ",".join(dict.fromkeys([splink_jar(), *jars]))
    if local and "spark.pyspark.python" not in conf:
        conf["spark.pyspark.python"] = os.environ.get("PYSPARK_PYTHON") or sys.executable
    java_options = ([conf["spark.driver.extraJavaOptions"]]
                    if "spark.driver.extraJavaOptions" in conf else [])
    if uses_metastore(settings):
        paths = spark_paths(settings)
        conf.setdefault("spark.sql.warehouse.dir", str(paths["warehouse"]))
        conf.setdefault("spark.hadoop.javax.jdo.option.ConnectionURL",
                        f"jdbc:derby:;databaseName={paths['metastore'] / 'metastore_db'};"
                        "create=true")
        java_options.append(f"-Dderby.system.home={paths['metastore']}")
        conf.setdefault("spark.sql.catalogImplementation", "hive")
    elif settings.warehouse.target == "spark":
        conf.setdefault("spark.sql.warehouse.dir", str(spark_paths(settings)["warehouse"]))
    if settings.warehouse.target == "spark":
        # dbt's sources read every raw file of a channel, columns unified by name
        conf.setdefault("spark.sql.parquet.mergeSchema", "true")
    if java_options:
        conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    return conf


def get_session(settings: Settings, app_name: str = "cdp") -> Any:
    """The process's SparkSession, created from `spark_conf(settings)` on `spark.master` if
    none is running (under spark-submit the master and conf of the submit apply).

    A session started elsewhere without the Splink jar gets it added (`ADD JAR`), so Splink's
    similarity functions are always there.
    """
    from pyspark.sql import SparkSession

    conf = spark_conf(settings)
    # The Python workers are started by the JVM from this variable (local masters).
    if python := conf.get("spark.pyspark.python"):
        os.environ.setdefault("PYSPARK_PYTHON", python)
    running = SparkSession.getActiveSession()
    if running is None:
        builder = SparkSession.builder.appName(app_name)
        if not _under_spark_submit():
            builder = builder.master(settings.spark.master)
        for key, value in conf.items():
            builder = builder.config(key, value)
        if settings.warehouse.target == "spark":
            spark_paths(settings)["warehouse"].mkdir(parents=True, exist_ok=True)
        if uses_metastore(settings):
            spark_paths(settings)["metastore"].mkdir(parents=True, exist_ok=True)
            builder = builder.enableHiveSupport()
        running = builder.getOrCreate()
    _ensure_jar(running)
    return running


def _under_spark_submit() -> bool:
    # spark-submit starts the JVM first (with the submit's master and conf) and hands the
    # Python driver its gateway port; a plain Python process starts its own JVM.
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


SPLINK_UDF_CLASS = "uk.gov.moj.dash.linkage.JaroWinklerSimilarity"


def _ensure_jar(spark: Any) -> None:
    # A session started without the jar on the driver's class path (someone else's session, or
    # a spark-submit without it) gets it now; Splink registers its functions from it.
    if not spark._jvm.org.apache.spark.util.Utils.classIsLoadable(SPLINK_UDF_CLASS):
        spark.sql("ADD JAR " + _quoted(splink_jar()))


def _quoted(path: str) -> str:
    # a file path chosen by the installed package, not data; quote it as a SQL string
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_job(config: str | Path | None, step: Callable[[Settings], StepSummary]) -> int:
    """The body of a `jobs/` entry point (spark-submit): load the configuration (`--config`,
    else `$CDP_CONFIG` or the nearest cdp.yaml) with `engine: spark`, run the library step the
    CLI runs, print its summary, stop the session. Returns the exit code: 0 done, 1 the step
    failed (its message on stderr), 2 the configuration is invalid."""
    from cdp.cli import print_summary
    from cdp.config import ConfigError, load_settings
    from cdp.errors import CdpError

    try:
        settings = load_settings(config, env={**os.environ, "CDP_ENGINE": "spark"})
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = step(settings)
    except CdpError as exc:
        if partial := getattr(exc, "summary", None):
            print_summary(partial)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        from pyspark.sql import SparkSession

        if (session := SparkSession.getActiveSession()) is not None:
            session.stop()
    print_summary(summary)
    return 0 if summary.ok else 1
