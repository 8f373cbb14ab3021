-- Segment size over time: one row per segment and day on which its membership changed, with
-- the entries, exits and the size at the end of that day (the size holds until the next row).
with

changes as (

    select * from {{ ref('segment_membership_changes') }}

),

daily as (

    select
        segment,
        change_date,
        sum(case when change_type = 'entered' then 1 else 0 end) as entered,
        sum(case when change_type = 'exited' then 1 else 0 end) as exited
    from changes
    group by segment, change_date

),

final as (

    select
        segment,
        change_date as day,
        cast(entered as {{ dbt.type_bigint() }}) as entered,
        cast(exited as {{ dbt.type_bigint() }}) as exited,
        cast(sum(entered - exited) over (
            partition by segment order by change_date rows between unbounded preceding and current row
        ) as {{ dbt.type_bigint() }}) as size
    from daily

)

select * from final
