{#
  Contract data types on Postgres.

  The model contracts name dbt's portable type labels (`string`, as `dbt.type_string()` does),
  which DuckDB and Spark take as they are. Postgres has no `string`: these two overrides of dbt's
  own macros pass every contract type through the adapter's label translation
  (`api.Column.translate_type`: string -> text; other types unchanged) where dbt checks the
  contract (`cast(null as <type>)`), where it writes the table's DDL, and in unit-test fixtures
  (`safe_cast`).
#}
{% macro postgres__cast(field, type) -%}
    cast({{ field }} as {{ api.Column.translate_type(type) }})
{%- endmacro %}

{% macro postgres__safe_cast(field, type) -%}
    cast({{ field }} as {{ api.Column.translate_type(type) }})
{%- endmacro %}

{% macro postgres__get_table_columns_and_constraints() -%}
  {%- set columns = {} -%}
  {%- for name, column in model['columns'].items() -%}
    {%- set translated = {} -%}
    {%- do translated.update(column) -%}
    {%- if column.get('data_type') -%}
      {%- do translated.update({'data_type': api.Column.translate_type(column['data_type'])}) -%}
    {%- endif -%}
    {%- do columns.update({name: translated}) -%}
  {%- endfor -%}
  {%- set raw_column_constraints = adapter.render_raw_columns_constraints(raw_columns=columns) -%}
  {%- set raw_model_constraints = adapter.render_raw_model_constraints(raw_constraints=model['constraints']) -%}
    (
    {% for c in raw_column_constraints -%}
      {{ c }}{{ "," if not loop.last or raw_model_constraints }}
    {% endfor %}
    {% for c in raw_model_constraints -%}
        {{ c }}{{ "," if not loop.last }}
    {% endfor -%}
    )
{%- endmacro %}
