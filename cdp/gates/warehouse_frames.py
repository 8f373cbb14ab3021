"""Reading what the identity and marts gates check: small DuckDB queries -> pandas frames.

Values never enter SQL text: channel names and thresholds are parameters; identifiers come from
cdp.yaml (quoted) or are fixed here.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from cdp import lake
from cdp.config import Settings
from cdp.errors import CdpError
from cdp.warehouse import connect

IDENTITY_TABLES = ("identity_clusters", "identity_records", "golden_profiles")
MART_TABLES = ("segment_membership", "dim_customers")


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    path = settings.resolved_paths.warehouse
    if not path.exists():
        raise CdpError(f"no warehouse at {path}: run `cdp resolve` (and `cdp build`) first")
    try:
        try:
            return connect(settings, read_only=True)
        except duckdb.ConnectionException:
            # This process already holds the file open read-write (an in-process `cdp build`:
            # dbt-duckdb keeps its connection); DuckDB then only allows the same configuration.
            return connect(settings, read_only=False)
    except duckdb.Error as exc:
        raise CdpError(f"cannot open the warehouse {path}: {str(exc).splitlines()[0]}") from None


def _schema_of(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], preferred: str,
               step: str) -> str:
    """The schema holding all `tables` (`preferred` first), or a clear error."""
    rows = con.execute(
        "select table_schema, count(distinct table_name) from information_schema.tables "
        "where table_name in (select unnest(?)) group by table_schema",
        [list(tables)]).fetchall()
    complete = sorted((schema for schema, n in rows if n == len(tables)),
                      key=lambda s: (s != preferred, s))
    if not complete:
        raise CdpError(f"the warehouse has no {', '.join(tables)} in one schema: "
                       f"run `{step}` first")
    return complete[0]


def identity_schema(con: duckdb.DuckDBPyConnection) -> str:
    return _schema_of(con, IDENTITY_TABLES, "identity", "cdp resolve")


def records_frame(con: duckdb.DuckDBPyConnection, settings: Settings, schema: str
                  ) -> tuple[pd.DataFrame, int]:
    """One row per ingested source record (latest version per primary key, committed batches
    of channels with identity fields) and per cluster row not in the lake; plus the number of
    source rows identity resolution declares unresolved."""
    selects, params = [], []
    resolved = _resolved_batches(con, schema)
    for name, channel in settings.channels.items():
        files = [str(p) for p in lake.committed_raw_files(settings, name)
                 if resolved is None or p.stem in resolved]
        if not channel.identity or not files:
            continue
        pk = _q(channel.primary_key)
        selects.append(f"select distinct cast(? as varchar) as source, cast({pk} as varchar) "
                       f"as source_record_id from read_parquet(?, union_by_name = true, "
                       f"hive_partitioning = false) where {pk} is not null")
        params += [name, files]
    ingested = " union all ".join(selects) or \
        "select cast(null as varchar) as source, cast(null as varchar) as source_record_id " \
        "where false"
    s = _q(schema)
    frame = con.execute(f"""
        with ingested as ({ingested}),
        clusters as (
            select source, source_record_id, count(*) as cluster_rows,
                   count(distinct customer_id) as customers
            from {s}.identity_clusters group by source, source_record_id
        )
        select coalesce(i.source, c.source) as source,
               coalesce(i.source_record_id, c.source_record_id) as source_record_id,
               coalesce(c.customers, 0) as customers,
               case when i.source is null then 'orphan'
                    when c.source is null or c.customers = 0 then 'none'
                    when c.cluster_rows > 1 or c.customers > 1 then 'many'
                    else 'one' end as mapping
        from ingested i full outer join clusters c
          on c.source = i.source and c.source_record_id = i.source_record_id
        order by source, source_record_id""", params).df()
    declared = con.execute(f"select coalesce(sum(n_rows), 0) from {s}.identity_records "
                           f"where status = 'unresolved'").fetchone()[0]
    return frame, int(declared)


def _resolved_batches(con: duckdb.DuckDBPyConnection, schema: str) -> set[str] | None:
    """The lake batches the identity tables reflect (`identity.resolved_batches`, written by
    resolve), so a batch ingested while resolve ran is not counted as unmapped; None for a
    warehouse from before that table (then every committed batch counts)."""
    found = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                        "and table_name = 'resolved_batches'", [schema]).fetchall()[0][0]
    if not found:
        return None
    return {r[0] for r in con.execute(
        f"select batch_id from {_q(schema)}.resolved_batches").fetchall()}


def customers_frame(con: duckdb.DuckDBPyConnection, schema: str) -> pd.DataFrame:
    """One row per customer: cluster sizes and distinct standardised emails / birth dates."""
    s = _q(schema)
    return con.execute(f"""
        with rows_per_customer as (
            select customer_id, count(*) as source_rows
            from {s}.identity_clusters group by customer_id
        )
        select r.customer_id,
               count(*) as identity_records,
               coalesce(any_value(c.source_rows), 0) as source_rows,
               count(distinct r.email) as distinct_emails,
               count(distinct r.birth_date) as distinct_birth_dates,
               case when count(*) = 1 then 1 else 0 end as singleton
        from {s}.identity_records r
        left join rows_per_customer c on c.customer_id = r.customer_id
        where r.status is distinct from 'unresolved'
        group by r.customer_id
        order by r.customer_id""").df()


def golden_frame(con: duckdb.DuckDBPyConnection, schema: str) -> pd.DataFrame:
    s = _q(schema)
    return con.execute(f"""
        select customer_id, first_name, last_name, email, phone, record_count,
               case when email is not null or phone is not null or loyalty_id is not null
                    then 1 else 0 end as has_identifier
        from {s}.golden_profiles order by customer_id""").df()


def marts_schema(con: duckdb.DuckDBPyConnection) -> str:
    return _schema_of(con, MART_TABLES, "main", "cdp build")


def segment_sizes(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, int]:
    rows = con.execute(f"select segment, count(*) from {_q(schema)}.segment_membership "
                       f"group by segment order by segment").fetchall()
    return {str(segment): int(n) for segment, n in rows}


def consent_frame(con: duckdb.DuckDBPyConnection, schema: str) -> pd.DataFrame:
    """One row per segment member and whether consent allows the segment's channel.

    Mirrors dbt's `consent_condition` macro (dbt/macros/consent.sql), checked independently
    against dim_customers: unknown consent is no consent; `none` needs none.
    """
    s = _q(schema)
    return con.execute(f"""
        select m.segment, m.customer_id, m.activation_channel,
               case when d.customer_id is null then false
                    when m.activation_channel = 'email'
                        then coalesce(d.email_opt_in, false) and d.email is not null
                    when m.activation_channel = 'sms'
                        then coalesce(d.sms_opt_in, false) and d.phone is not null
                    when m.activation_channel = 'ads'
                        then coalesce(d.ads_opt_in, false)
                             and (d.email is not null or d.phone is not null)
                    when m.activation_channel = 'none' then true
                    else false end as has_consent
        from {s}.segment_membership m
        left join {s}.dim_customers d on d.customer_id = m.customer_id
        order by m.segment, m.customer_id""").df()
