-- Previously active customers (at least `lapsed_min_orders` orders) with no purchase in the last
-- `lapsed_after_days`: the win-back audience. Intended for email (see meta).
with

customers as (

    select * from {{ ref('dim_customers') }}

),

customer_360 as (

    select * from {{ ref('customer_360') }}

),

lapsed as (

    select *
    from customer_360
    where order_count >= {{ var('lapsed_min_orders') }}
      and recency_days > {{ var('lapsed_after_days') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast({{ dbt.dateadd('day', var('lapsed_after_days'), 'lapsed.last_order_at') }} as date)
            as since,
        lapsed.order_count,
        lapsed.lifetime_value,
        lapsed.last_order_at,
        lapsed.recency_days as days_since_last_order,
        lapsed.preferred_channel,
        lapsed.favourite_category
    from lapsed
    inner join customers
        on customers.customer_id = lapsed.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
