{#
  register_external_sources(): make every source readable through `source()` on the target.

  - duckdb: nothing to do; dbt-duckdb renders `meta.external_location` (read_parquet over the
    raw lake) wherever a model calls `source()`.
  - spark: (re)create each source as an external Parquet table over `meta.spark_location` and
    pick up new `load_date=` partitions (`meta.spark_partitioned`). Runs as an on-run-start hook,
    so every build sees the lake as it is now, with schemas merged across batches.
  - others (postgres): sources are ordinary tables in the `raw` / `lake_meta` / `identity`
    schemas; `cdp build` loads them first on postgres (cdp/build_postgres.py).
#}
{% macro register_external_sources() -%}
  {{ return(adapter.dispatch('register_external_sources', 'cdp')()) }}
{%- endmacro %}

{% macro default__register_external_sources() -%}
  {{ return('') }}
{%- endmacro %}

{% macro spark__register_external_sources() -%}
  {%- if execute -%}
    {%- for node in graph.sources.values() if node.package_name == project_name -%}
      {#- source-level meta (config or legacy) and table-level meta, the latter winning -#}
      {%- set meta = {} -%}
      {%- do meta.update(node.source_meta or {}) -%}
      {%- do meta.update((node.config or {}).get('meta') or {}) -%}
      {%- do meta.update(node.meta or {}) -%}
      {%- set location = meta.get('spark_location') -%}
      {%- if location -%}
        {%- set table = node.schema ~ '.' ~ node.identifier -%}
        {%- do run_query('create database if not exists ' ~ node.schema) -%}
        {%- do run_query('drop table if exists ' ~ table) -%}
        {%- do run_query("create table " ~ table ~ " using parquet options (path '"
                         ~ location.replace('{name}', node.name) ~ "', mergeSchema 'true')") -%}
        {%- if meta.get('spark_partitioned') -%}
          {%- do run_query('msck repair table ' ~ table) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}


{#
  committed_rows(relation): rows of a raw-lake relation whose batch is committed in the load log.
  `cdp ingest` writes the load-log entry last, so a crash can leave raw files of an uncommitted
  batch behind; they must never reach the warehouse.
#}
{% macro committed_rows(relation) -%}
  select r.*
  from {{ relation }} as r
  where r._batch_id in (
      select batch_id from {{ source('lake_meta', 'load_log') }} where status = 'loaded'
  )
{%- endmacro %}


{#
  latest_version(relation, key): one row per primary key, the latest delivered version.
  Raw rows repeat a key across batches (re-sent or corrected records); the latest ingestion
  wins, then the later file and row (a file that repeats a key: its last occurrence wins).
  Adds `_version_rank` (always 1); staging models select their columns explicitly.
#}
{% macro latest_version(relation, key) -%}
  select *
  from (
      select
          committed.*,
          row_number() over (
              partition by {{ key }}
              order by _ingested_at desc, _source_file desc, _row_number desc
          ) as _version_rank
      from ({{ committed_rows(relation) }}) as committed
  ) as versions
  where _version_rank = 1
{%- endmacro %}
