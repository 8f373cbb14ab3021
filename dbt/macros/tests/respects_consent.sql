{#
  respects_consent: no row of a segment belongs to a customer who lacks consent (or a contact
  point) for the segment's activation channel (meta.activation_channel). Checked against
  dim_customers, not the segment's own copy of the flags, so a stale copy cannot hide a breach.
#}
{% test respects_consent(model) %}
{%- set channel = 'none' -%}
{%- if execute -%}
  {%- set matches = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                    | selectattr('name', 'equalto', model.identifier) | list -%}
  {%- if matches | length != 1 -%}
    {{ exceptions.raise_compiler_error("respects_consent: cannot find model " ~ model.identifier) }}
  {%- endif -%}
  {%- set channel = activation_channel(matches[0]) -%}
{%- endif %}
select s.customer_id
from {{ model }} as s
left join {{ ref('dim_customers') }} as d
  on d.customer_id = s.customer_id
where d.customer_id is null
   or not {{ consent_condition(channel, 'd') }}
{% endtest %}
