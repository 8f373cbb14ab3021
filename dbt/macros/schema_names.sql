{#
  Custom schemas are used as given (staging, intermediate), not prefixed with the target schema,
  so marketers find the marts in the default schema and the layers stay apart.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
