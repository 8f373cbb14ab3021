"""The Postgres target of `cdp build`: copy the sources dbt reads into the database first.

dbt on Postgres cannot read the Parquet lake or the DuckDB warehouse file, so before dbt runs
this module loads, in one transaction (dbt never sees a half-loaded set):

    raw.<channel>            every raw-lake file of the channel (union by column name)
    lake_meta.load_log       the lake's load log
    identity.<table>         identity_clusters and golden_profiles from the DuckDB warehouse

DuckDB reads the files and streams Arrow batches; psycopg 3 writes them with `COPY ... FROM
STDIN` (values travel as COPY data, never pasted into SQL). Column names are folded to lower
case, as unquoted names in the dbt models are on Postgres (`TRX_NO` -> `trx_no`).

The connection comes from the same environment variables as the `postgres` profile in
dbt/profiles.yml: CDP_PG_HOST, CDP_PG_PORT, CDP_PG_USER, DBT_ENV_SECRET_CDP_PG_PASSWORD,
CDP_PG_DBNAME (and CDP_PG_SCHEMA for the marts).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cdp.config import Settings
from cdp.errors import CdpError

# DuckDB type (as DESCRIBE spells it) -> Postgres type; DECIMAL and lists are handled apart.
_TYPES = {
    "VARCHAR": "text", "BOOLEAN": "boolean", "DATE": "date", "TIME": "time",
    "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TINYINT": "smallint", "SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint",
    "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)", "HUGEINT": "numeric(38, 0)",
    "FLOAT": "real", "DOUBLE": "double precision", "UUID": "uuid", "BLOB": "bytea",
    "JSON": "jsonb", "INTERVAL": "interval",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def connection_settings() -> dict[str, Any]:
    """psycopg connection keywords from the environment, defaults as in dbt/profiles.yml."""
    return {
        "host": os.environ.get("CDP_PG_HOST", "localhost"),
        "port": int(os.environ.get("CDP_PG_PORT", "5432")),
        "user": os.environ.get("CDP_PG_USER", "cdp"),
        "password": os.environ.get("DBT_ENV_SECRET_CDP_PG_PASSWORD") or None,
        "dbname": os.environ.get("CDP_PG_DBNAME", "cdp"),
    }


def marts_schema() -> str:
    """The schema the marts land in (the profile's `schema`)."""
    return os.environ.get("CDP_PG_SCHEMA", "public")


@contextlib.contextmanager
def connect(autocommit: bool = False) -> Iterator[Any]:
    """A psycopg 3 connection to the target database; a CdpError (no password in it) when the
    server cannot be reached."""
    import psycopg

    params = connection_settings()
    try:
        con = psycopg.connect(**params, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise CdpError(f"cannot connect to PostgreSQL at {params['host']}:{params['port']} "
                       f"database {params['dbname']} as {params['user']} "
                       f"(CDP_PG_* variables): {exc.__class__.__name__}") from None
    try:
        yield con
    finally:
        con.close()


def postgres_type(duckdb_type: str) -> str:
    """The Postgres type for a DuckDB column type (lists become arrays)."""
    if duckdb_type.endswith("[]"):
        return postgres_type(duckdb_type[:-2]) + "[]"
    if match := _DECIMAL.fullmatch(duckdb_type):
        return f"numeric({match[1]}, {match[2]})"
    if duckdb_type in _TYPES:
        return _TYPES[duckdb_type]
    raise CdpError(f"cannot load a column of type {duckdb_type} into PostgreSQL")


def load_sources(settings: Settings, raw_tables: list[str],
                 identity_tables: tuple[str, ...]) -> dict[str, int]:
    """Replace the dbt sources in Postgres with the lake and identity tables as they are now;
    returns rows loaded per table ("schema.table" -> rows)."""
    import duckdb

    paths = settings.resolved_paths
    # (schema, table, DuckDB relation SQL); paths were checked free of quotes by cdp.build
    inputs: list[tuple[str, str, str]] = [
        ("raw", name, f"select * from read_parquet('{_glob(paths.raw / name, '*/*.parquet')}', "
                      "hive_partitioning = true, union_by_name = true)")
        for name in raw_tables
    ]
    inputs.append(("lake_meta", "load_log", "select * from read_parquet("
                   f"'{_glob(paths.meta / 'load_log', '*.parquet')}', union_by_name = true)"))
    inputs += [("identity", name, f"select * from identity.{name}") for name in identity_tables]

    source = duckdb.connect(str(paths.warehouse))
    loaded: dict[str, int] = {}
    try:
        with connect() as con, con.transaction():
            for schema in sorted({schema for schema, _, _ in inputs}):
                con.execute(_sql("create schema if not exists {}", schema))
            for schema, table, relation in inputs:
                loaded[f"{schema}.{table}"] = _copy_table(source, relation, con, schema, table)
    finally:
        source.close()
    return loaded


def _glob(folder: Path, pattern: str) -> str:
    return str(folder / pattern)


def _sql(template: str, *identifiers: str | tuple[str, ...]) -> Any:
    """A psycopg SQL statement with quoted identifiers (a tuple = schema-qualified name)."""
    from psycopg import sql

    return sql.SQL(template).format(*(
        sql.Identifier(*name) if isinstance(name, tuple) else sql.Identifier(name)
        for name in identifiers))


def _copy_table(source: Any, relation: str, con: Any, schema: str, table: str) -> int:
    """(Re)create `schema.table` in Postgres with the relation's columns and COPY its rows."""
    from psycopg import sql

    described = source.execute(f"describe {relation}").fetchall()
    columns = [(name.lower(), postgres_type(kind)) for name, kind, *_ in described]
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise CdpError(f"{schema}.{table}: column names differ only by case; Postgres folds "
                       "unquoted names to lower case")
    target = (schema, table)
    con.execute(_sql("drop table if exists {} cascade", target))
    con.execute(sql.SQL("create table {} ({})").format(
        sql.Identifier(*target),
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                           for name, kind in columns)))
    rows = 0
    copy_sql = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(*target), sql.SQL(", ").join(map(sql.Identifier, names)))
    reader = source.sql(relation).to_arrow_reader(batch_size=50_000)
    with con.cursor() as cur, cur.copy(copy_sql) as copy:
        for batch in reader:
            for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                copy.write_row(row)
            rows += batch.num_rows
    return rows


@contextlib.contextmanager
def query_function() -> Iterator[Any]:
    """`query(sql) -> rows`, `{schema}` in the SQL standing for the marts schema. Autocommit, so
    one failed query (a table a --select build did not make) does not void the next."""
    from psycopg import sql

    schema = sql.Identifier(marts_schema())
    with connect(autocommit=True) as con:
        def query(text: str) -> list[tuple]:
            return con.execute(sql.SQL(text.replace("{schema}", "{}")).format(schema)).fetchall()

        yield query
