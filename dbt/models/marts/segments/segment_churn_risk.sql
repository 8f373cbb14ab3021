-- Repeat customers whose buying rhythm broke: at least `churn_min_orders` orders, and the time
-- since their last order is more than `churn_gap_multiplier` x their usual time between orders,
-- but they are not lapsed yet (bought within `lapsed_after_days`). Intended for SMS (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

rhythm as (

    select
        customer_id,
        order_count,
        lifetime_value,
        last_order_at,
        recency_days,
        -- the average gap between consecutive orders, in days
        {{ dbt.datediff('cast(first_order_at as date)', 'cast(last_order_at as date)', 'day') }}
            * 1.0 / (order_count - 1) as avg_days_between_orders
    from {{ ref('customer_360') }}
    where order_count >= {{ var('churn_min_orders') }}

),

at_risk as (

    select *
    from rhythm
    where recency_days > {{ var('churn_gap_multiplier') }} * avg_days_between_orders
      and recency_days <= {{ var('lapsed_after_days') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        -- the day the gap passed the threshold
        cast({{ dbt.dateadd('day',
                            'ceil(' ~ var('churn_gap_multiplier') ~ ' * at_risk.avg_days_between_orders)',
                            'at_risk.last_order_at') }} as date) as since,
        at_risk.order_count,
        at_risk.lifetime_value,
        at_risk.last_order_at,
        at_risk.recency_days as days_since_last_order,
        cast(at_risk.avg_days_between_orders as decimal(18, 2)) as avg_days_between_orders
    from at_risk
    inner join customers
        on customers.customer_id = at_risk.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
