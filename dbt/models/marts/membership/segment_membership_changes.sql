-- The history of segment membership: one row each time a customer enters or leaves a segment,
-- appended by every build (incremental, never rebuilt by --full-refresh). Activation reads the
-- latest build's rows as its adds and removes; segment_size_history charts sizes over time.
--
-- change_date  the build's as_of_date (the data's "today")
-- recorded_at  when the build ran; orders builds that share an as_of_date
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='fail'
    )
}}

with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

current_members as (

    select segment, customer_id from {{ ref('segment_membership') }}

),

{% if is_incremental() %}

latest_change as (

    select segment, customer_id, change_type
    from (
        select
            segment,
            customer_id,
            change_type,
            row_number() over (
                partition by segment, customer_id
                order by recorded_at desc, change_date desc, change_type
            ) as change_rank
        from {{ this }}
    ) as ranked
    where change_rank = 1

),

previous_members as (

    select segment, customer_id from latest_change where change_type = 'entered'

),

{% else %}

previous_members as (

    select segment, customer_id from current_members where 1 = 0

),

{% endif %}

entered as (

    select current_members.segment, current_members.customer_id, 'entered' as change_type
    from current_members
    left join previous_members
        on previous_members.segment = current_members.segment
        and previous_members.customer_id = current_members.customer_id
    where previous_members.customer_id is null

),

exited as (

    select previous_members.segment, previous_members.customer_id, 'exited' as change_type
    from previous_members
    left join current_members
        on current_members.segment = previous_members.segment
        and current_members.customer_id = previous_members.customer_id
    where current_members.customer_id is null

),

changes as (

    select * from entered
    union all
    select * from exited

),

final as (

    select
        as_of.as_of_date as change_date,
        changes.segment,
        changes.customer_id,
        changes.change_type,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }})
            as recorded_at,
        cast('{{ invocation_id }}' as {{ dbt.type_string() }}) as invocation_id
    from changes
    cross join as_of

)

select * from final
