{#
  sorted_list_agg(column): the distinct values of `column` in a group, sorted, comma-separated.
  dbt.listagg cannot sort on Spark, so Spark gets array functions.
#}
{% macro sorted_list_agg(column) -%}
  {{ return(adapter.dispatch('sorted_list_agg', 'cdp')(column)) }}
{%- endmacro %}

{% macro default__sorted_list_agg(column) -%}
  {{ dbt.listagg('distinct ' ~ column, "','", 'order by ' ~ column) }}
{%- endmacro %}

{% macro spark__sorted_list_agg(column) -%}
  array_join(array_sort(collect_set({{ column }})), ',')
{%- endmacro %}

{# The channels of the omnichannel timeline, in display order. #}
{% macro interaction_channels() -%}
  {{ return(['web', 'app', 'store', 'email', 'sms', 'call_center', 'loyalty']) }}
{%- endmacro %}

{# The channels customers buy in. #}
{% macro purchase_channels() -%}
  {{ return(['web', 'app', 'store']) }}
{%- endmacro %}
