"""The Spark engine: the pipeline's working tables are Spark temporary views of one session.

The pipeline's SQL is written in DuckDB's dialect (double-quoted identifiers, `varchar`,
`is not distinct from`, `filter (where ...)`); this engine transpiles each statement to Spark
SQL with sqlglot, so there is one copy of every query and both engines run the same logic.
Parameters stay parameters (`?`, bound by Spark).

Working tables are materialised when created, so later queries neither recompute them nor drag
their lineage along (plans of 60 chained tables would take longer to optimise than to run):
`CDP_SPARK_MATERIALISE` chooses how (see `MATERIALISE`). Each materialisation is a Spark job
(0.1-1 s locally, whatever the size), so tables the pipeline reads only once (`single_use`) stay
plain views computed by their reader, and tables from Arrow are not materialised at all (their
data is already in the JVM). EM's iterations over Splink's agreement-pattern counts run on the
driver (`CdpSparkAPI`). Splink's own intermediate tables are
persisted in memory locally and written as Parquet under the run's checkpoint folder on a
cluster (`CDP_SPARK_SPLINK_LINEAGE`, Splink's `break_lineage_method`).

Python-side steps (standardising distinct values) run on the executors (`mapInArrow`), with
the very same functions the DuckDB engine calls. Results still come back to the driver for
clustering (as with DuckDB); see jobs/README.md for what that means on a cluster.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdp.config import Settings
from cdp.spark import get_session, is_local, spark_paths

MATERIALISE_ENV = "CDP_SPARK_MATERIALISE"
SPLINK_LINEAGE_ENV = "CDP_SPARK_SPLINK_LINEAGE"
# How working tables are materialised (plans always cut from their lineage: kept, 60 chained
# tables make plans that exhaust the driver's memory):
#   lazy_local_checkpoint  kept in executor memory/disk by the first query that reads them
#                          (no job of its own; lost with a lost executor)
#   local_checkpoint       the same, computed at once (one job per table)
#   checkpoint             reliable files in the checkpoint folder (one job per table)
MATERIALISE = ("lazy_local_checkpoint", "local_checkpoint", "checkpoint")
# Splink repartitions its big intermediate tables (blocked pairs, comparison vectors,
# predictions) into this many partitions per core of the session (all executors' cores).
PARTITIONS_PER_CORE = 2


def apply_distinct(batch: pa.RecordBatch, columns: Sequence[str],
                   fn: Callable[..., tuple[Any, ...]], out_schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with the outputs of `fn` over its `columns` appended."""
    inputs = [batch.column(c).to_pylist() for c in columns]
    outputs = [fn(*values) for values in zip(*inputs, strict=True)]
    arrays = [batch.column(c) for c in columns]
    arrays += [pa.array([o[i] for o in outputs], type=field.type)
               for i, field in enumerate(out_schema)]
    return pa.RecordBatch.from_arrays(arrays, names=[*columns, *out_schema.names])


@functools.lru_cache(maxsize=4096)
def to_spark_sql(sql: str) -> str:
    """DuckDB-dialect SQL as Spark SQL (cached: the pipeline repeats its statements)."""
    import sqlglot

    statements = sqlglot.transpile(sql, read="duckdb", write="spark")
    if len(statements) != 1:
        raise ValueError("one SQL statement expected")
    return statements[0]


class SparkEngine:
    name = "spark"

    def __init__(self, settings: Settings, spark: Any | None = None) -> None:
        self.spark = spark or get_session(settings, "cdp-identity")
        self.master = self.spark.sparkContext.master
        default = "local_checkpoint" if is_local(self.master) else "checkpoint"
        self.materialise = os.environ.get(MATERIALISE_ENV, default)
        if self.materialise not in MATERIALISE:
            raise ValueError(f"{MATERIALISE_ENV} must be one of {', '.join(MATERIALISE)}")
        self._run_id = uuid.uuid4().hex[:12]
        self.checkpoint_dir = spark_paths(settings)["checkpoints"] / f"identity-{self._run_id}"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.spark.sparkContext.setCheckpointDir(str(self.checkpoint_dir))
        # The pipeline's SQL means naive timestamps by `timestamp` (as DuckDB does); set for
        # this engine's run only, the session may serve others (the dbt Spark target)
        self._timestamp_type = self.spark.conf.get("spark.sql.timestampType", None)
        self.spark.conf.set("spark.sql.timestampType", "TIMESTAMP_NTZ")
        self._frames: dict[str, Any] = {}  # working table -> its materialised DataFrame
        self._splink_apis: list[Any] = []

    # --- SQL --------------------------------------------------------------------------------
    def _sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        args = list(params or [])
        return self.spark.sql(to_spark_sql(sql), args=args or None)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._sql(sql, params).collect()

    def create_table(self, name: str, select_sql: str,
                     params: Sequence[Any] | None = None, *, single_use: bool = False) -> None:
        frame = self._sql(select_sql, params)
        if single_use:
            # a plain view: its one reader computes it in its own job, which saves this one
            # (a view stores its analysed plan, so the tables it reads may be dropped first)
            self._replace(name, frame)
        else:
            self._store(name, frame)

    def drop_table(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        frame = self._frames.pop(name, None)
        if frame is not None:
            frame.unpersist()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self._sql(sql, params).first()
        return row[0] if row is not None else None

    def to_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self._sql(sql, params).toArrow()

    def from_arrow(self, name: str, table: pa.Table) -> None:
        # the Arrow batches are sent to the JVM and kept there as they are: nothing to
        # compute, so nothing to materialise (that was a job per table)
        self._replace(name, self.spark.createDataFrame(table))

    def register_parquet(self, name: str, files: Sequence[Path]) -> None:
        # Spark infers a Parquet schema in a job of its own (one per channel). The files'
        # footers are read here instead: when the batches share one schema (the usual case)
        # Spark is given it; otherwise mergeSchema unifies columns by name, as DuckDB's
        # union_by_name does.
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import from_arrow_schema

        schemas = {pq.read_schema(f) for f in files}
        reader = self.spark.read
        if len(schemas) == 1:
            # timestamps without a time zone (isAdjustedToUTC=false) as TIMESTAMP_NTZ, as
            # Spark's own inference reads them
            reader = reader.schema(from_arrow_schema(schemas.pop(), prefer_timestamp_ntz=True))
        else:
            reader = reader.option("mergeSchema", "true")
        reader.parquet(*map(str, files)).createOrReplaceTempView(name)

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def map_distinct(self, name: str, select_sql: str, columns: Sequence[str],
                     fn: Callable[..., tuple[Any, ...]], out_schema: pa.Schema) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        cols = ", ".join(f'"{c}"' for c in columns)
        distinct = self._sql(f"select distinct {cols} from ({select_sql}) as s")
        in_schema = distinct.schema
        spark_out = from_arrow_schema(out_schema)
        result_schema = in_schema.__class__([*in_schema.fields, *spark_out.fields])
        names = list(columns)

        def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield apply_distinct(batch, names, fn, out_schema)

        self._store(name, distinct.mapInArrow(apply, result_schema))

    # --- materialisation ---------------------------------------------------------------------
    def _partitions(self) -> int:
        """Partitions for a table spread over the session's cores (all executors')."""
        return max(1, PARTITIONS_PER_CORE * self.spark.sparkContext.defaultParallelism)

    def _store(self, name: str, frame: Any) -> None:
        partitions = self._partitions()
        if partitions > 1 and _output_partitions(frame) == 1:
            # A table kept in one partition is read by one task on one core, and so is all
            # that streams from it: the u sample (an ordered limit) is Splink's cross join of
            # a million pairs, 6 s in one task at 100k records. Spread it over the cores.
            frame = frame.repartition(partitions)
        if self.materialise == "checkpoint":
            frame = frame.checkpoint(eager=True)
        else:
            frame = frame.localCheckpoint(eager=self.materialise == "local_checkpoint")
        self._replace(name, frame)

    def _replace(self, name: str, frame: Any) -> None:
        old = self._frames.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._frames[name] = frame
        if old is not None:
            old.unpersist()

    # --- Splink -------------------------------------------------------------------------------
    def splink_db_api(self) -> Any:
        # Splink's big intermediate tables: kept in memory (spilling to disk) locally, where
        # it saved a tenth of the jobs; written as Parquet on a cluster, where a lost executor
        # must not lose them
        lineage = os.environ.get(SPLINK_LINEAGE_ENV,
                                 "persist" if is_local(self.master) else "parquet")
        api = _splink_api_class()(
            spark_session=self.spark, break_lineage_method=lineage,
            num_partitions_on_repartition=self._partitions())
        register_duckdb_similarity(self.spark)  # after Splink registered the jar's functions
        self._splink_apis.append(api)
        return api

    def close(self) -> None:
        for name in list(self._frames):
            self.drop_table(name)
        for api in self._splink_apis:
            api.delete_tables_created_by_splink_from_db()
        # Splink's persisted intermediate tables have no handle left to unpersist them by
        self.spark.catalog.clearCache()
        if self._timestamp_type is None:
            self.spark.conf.unset("spark.sql.timestampType")
        else:
            self.spark.conf.set("spark.sql.timestampType", self._timestamp_type)
        self.spark.sparkContext.setCheckpointDir(str(self.checkpoint_dir.parent))
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)


def _on_bytes(metric: str, empty: float | None) -> Callable[..., Any]:
    """An Arrow UDF applying rapidfuzz's `metric` (e.g. "JaroWinkler.similarity") to the UTF-8
    bytes of two strings (DuckDB's string functions work on bytes); `empty` is the result when
    one side is empty (None: the metric decides)."""
    from pyspark.sql.functions import arrow_udf

    def similarity(left: pa.Array, right: pa.Array) -> pa.Array:
        from rapidfuzz import distance  # imported on the executor: compiled functions

        kind, method = metric.split(".")
        fn = getattr(getattr(distance, kind), method)
        out = []
        for a, b in zip(left.to_pylist(), right.to_pylist(), strict=True):
            if a is None or b is None:
                out.append(None)
            elif empty is not None and not (a and b):
                out.append(empty)
            else:
                out.append(float(fn(a.encode("utf-8"), b.encode("utf-8"))))
        return pa.array(out, pa.float64())

    return arrow_udf(similarity, "double")


def register_duckdb_similarity(spark: Any) -> None:
    """`jaro_winkler` and `damerau_levenshtein` with DuckDB's exact results (rapidfuzz, the
    algorithms DuckDB's own functions follow, on UTF-8 bytes as DuckDB does), in place of
    the Scala functions of Splink's jar, which differ from DuckDB's on some pairs (0.806 vs
    0.764 for "aykaya"/"kaya"): with them the engines put a few pairs in different comparison
    levels, estimate different u and give different match weights. The jar stays on the
    session for Splink's other functions. About 4x slower per call than the Scala function
    (Splink's own measurement, moj-analytical-services/splink#2875), a price paid for engines
    that agree."""
    # DuckDB: jaro_winkler_similarity with an empty side is 0; damerau_levenshtein('', 'ab')
    # is 2, as rapidfuzz says
    spark.udf.register("jaro_winkler", _on_bytes("JaroWinkler.similarity", 0.0))
    spark.udf.register("damerau_levenshtein", _on_bytes("DamerauLevenshtein.distance", None))


PATTERN_COUNTS = "__splink__agreement_pattern_counts"


@functools.cache
def _splink_api_class() -> type:
    from splink.backends.spark import SparkAPI
    from splink.internals.input_column import InputColumn
    from splink.internals.splink_dataframe import SplinkDataFrame

    class DriverFrame(SplinkDataFrame):
        """A small Splink result computed on the driver (an Arrow table, no Spark table)."""

        def __init__(self, templated_name: str, table: pa.Table, db_api: Any) -> None:
            super().__init__(templated_name, f"{templated_name}_driver", db_api)
            self.table = table

        @property
        def columns(self) -> list[Any]:
            return [InputColumn(c, sqlglot_dialect_str="duckdb") for c in self.table.column_names]

        def validate(self) -> None:
            pass

        def _drop_table_from_database(self, force_non_splink_table: bool = False) -> None:
            pass

        def as_pyarrow_table(self, limit: int | None = None) -> pa.Table:
            return self.table if limit is None else self.table.slice(0, limit)

        def as_record_list(self, limit: int | None = None) -> list[dict[str, Any]]:
            return self.as_pyarrow_table(limit).to_pylist()

        def as_dict(self, limit: int | None = None) -> dict[str, list[Any]]:
            return self.as_pyarrow_table(limit).to_pydict()

    class CdpSparkAPI(SparkAPI):
        """Splink's Spark API, with EM's iterations over the agreement-pattern counts run on the
        driver. Splink counts the comparison vectors per agreement pattern (one row per
        pattern: a few thousand rows at most, whatever the data size) and then runs up to 20
        iterations over those counts, each a Spark query and job (planning and scheduling a
        tiny query: ~0.25 s each, ~26 per run). Here the counts are collected once and each
        iteration's SQL runs in DuckDB in this process, as Splink already does for the next
        step (`compute_proportions_for_new_parameters`), and as the DuckDB engine does: the
        same SQL, so the same sums."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._pattern_counts: dict[str, pa.Table] = {}

        def _break_lineage_and_repartition(self, spark_df: Any, templated_name: str,
                                           physical_name: str) -> Any:
            if templated_name == PATTERN_COUNTS:
                table = spark_df.toArrow()  # the one job; Spark keeps a copy for other readers
                self._pattern_counts[physical_name] = table
                return self.spark.createDataFrame(table)
            return super()._break_lineage_and_repartition(spark_df, templated_name,
                                                          physical_name)

        def sql_pipeline_to_splink_dataframe(self, pipeline: Any) -> Any:
            inputs = pipeline.input_dataframes
            if (self.debug_mode or not inputs
                    or any(df.physical_name not in self._pattern_counts for df in inputs)):
                return super().sql_pipeline_to_splink_dataframe(pipeline)
            import duckdb
            import sqlglot

            name = pipeline.output_table_name
            # Splink's SQL is read as Spark's dialect (as SparkAPI does), written as DuckDB's
            sql = sqlglot.transpile(pipeline.generate_cte_pipeline_sql(), read="spark",
                                    write="duckdb")[0]
            con = duckdb.connect()
            try:
                for df in inputs:
                    con.register(df.physical_name, self._pattern_counts[df.physical_name])
                table = con.sql(sql).to_arrow_table()
            finally:
                con.close()
            return DriverFrame(name, table, self)

    return CdpSparkAPI


def _output_partitions(frame: Any) -> int:
    """Partitions of a DataFrame's result, from its physical plan (planned, not run)."""
    return int(frame._jdf.queryExecution().executedPlan().outputPartitioning().numPartitions())
