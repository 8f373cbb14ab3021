-- Every segment in one table: one row per (segment, customer). `since` is the date the customer
-- met the segment's rule (see each segment); `activation_channel` is the channel the segment is
-- meant for (its YAML meta), so a sync knows which consent applies.
-- Segments come from the registry (var `segments`); see macros/segments.sql.
{%- set segments = var('segments') %}
{%- set nodes = segment_registry_nodes() %}
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

members as (

    {%- for segment in segments %}
    {%- set channel = activation_channel(nodes[loop.index0]) if execute else 'none' %}
    select
        '{{ segment }}' as segment,
        customer_id,
        since,
        '{{ channel }}' as activation_channel
    from {{ ref(segment_model_name(segment)) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

final as (

    select
        members.segment,
        members.customer_id,
        members.since,
        members.activation_channel,
        as_of.as_of_date
    from members
    cross join as_of

)

select * from final
