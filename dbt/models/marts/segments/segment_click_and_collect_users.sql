-- Customers with at least `click_and_collect_min_orders` click-and-collect orders in the last
-- `click_and_collect_lookback_days`: pickup reminders and in-store offers at their pickup store.
-- Intended for SMS (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

collects as (

    select orders.*
    from {{ ref('fct_orders') }} as orders
    cross join as_of
    where orders.customer_id is not null
      and orders.is_click_and_collect
      and orders.ordered_at >= {{ dbt.dateadd('day', -var('click_and_collect_lookback_days'), 'as_of.as_of_date') }}

),

by_customer as (

    select
        customer_id,
        count(*) as click_and_collect_order_count,
        min(ordered_at) as first_collect_at,
        max(ordered_at) as last_collect_at
    from collects
    group by customer_id
    having count(*) >= {{ var('click_and_collect_min_orders') }}

),

favourite_store as (

    select customer_id, store_id
    from (
        select
            customer_id,
            store_id,
            row_number() over (
                partition by customer_id order by count(*) desc, max(ordered_at) desc, store_id
            ) as store_rank
        from collects
        where store_id is not null
        group by customer_id, store_id
    ) as ranked
    where store_rank = 1

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(by_customer.first_collect_at as date) as since,
        cast(by_customer.click_and_collect_order_count as {{ dbt.type_bigint() }})
            as click_and_collect_order_count,
        by_customer.last_collect_at,
        favourite_store.store_id as pickup_store_id
    from by_customer
    inner join customers
        on customers.customer_id = by_customer.customer_id
    left join favourite_store
        on favourite_store.customer_id = by_customer.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
