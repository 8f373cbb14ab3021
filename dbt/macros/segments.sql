{#
  (Error messages here quote nothing: cdp build cuts quoted text from messages, as it may be data.)

  The segment registry: var('segments') lists the segment names; each has a model
  `segment_<name>` in models/marts/segments/. segment_registry_nodes() returns the model nodes
  in registry order and fails the build, naming the culprit, when the registry and the model
  files disagree (a new model not registered, or a registered name without a model).
#}
{% macro segment_model_name(segment) -%}
  {{ return('segment_' ~ segment) }}
{%- endmacro %}

{% macro segment_registry_nodes() -%}
  {%- if not execute -%}
    {{ return([]) }}
  {%- endif -%}
  {%- set registered = var('segments') -%}
  {%- set expected = [] -%}
  {%- for name in registered -%}
    {%- do expected.append(segment_model_name(name)) -%}
  {%- endfor -%}
  {%- set found = {} -%}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type == 'model' and node.package_name == project_name
          and 'segment' in (node.config.tags or []) and node.name.startswith('segment_') -%}
      {%- do found.update({node.name: node}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for name in found if name not in expected -%}
    {{ exceptions.raise_compiler_error("segment model " ~ name ~ " is not in the segment registry: add " ~ name[8:] ~ " to vars.segments in dbt_project.yml") }}
  {%- endfor -%}
  {%- set nodes = [] -%}
  {%- for name in expected -%}
    {%- if name not in found -%}
      {{ exceptions.raise_compiler_error("vars.segments lists " ~ name[8:] ~ " but there is no model " ~ name ~ " in models/marts/segments/") }}
    {%- endif -%}
    {%- do nodes.append(found[name]) -%}
  {%- endfor -%}
  {{ return(nodes) }}
{%- endmacro %}
