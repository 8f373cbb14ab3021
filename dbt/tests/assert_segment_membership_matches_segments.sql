-- segment_membership holds exactly the rows of the segment models: nothing lost, nothing added.
{%- set nodes = segment_registry_nodes() %}
with

expected as (

    {%- for segment in var('segments') %}
    select '{{ segment }}' as segment, customer_id from {{ ref(segment_model_name(segment)) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

actual as (

    select segment, customer_id from {{ ref('segment_membership') }}

),

missing as (

    select expected.segment, expected.customer_id, 'missing from segment_membership' as problem
    from expected
    left join actual
        on actual.segment = expected.segment and actual.customer_id = expected.customer_id
    where actual.customer_id is null

),

extra as (

    select actual.segment, actual.customer_id, 'not in its segment model' as problem
    from actual
    left join expected
        on expected.segment = actual.segment and expected.customer_id = actual.customer_id
    where expected.customer_id is null

)

select * from missing
union all
select * from extra
