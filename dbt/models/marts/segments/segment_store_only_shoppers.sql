-- Customers who bought in a store in the last `store_only_lookback_days` and never online (web
-- or app): the audience to bring online. Intended for ad platforms (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

by_customer as (

    select
        customer_id,
        sum(case when channel = 'store' then 1 else 0 end) as store_order_count,
        sum(case when channel <> 'store' then 1 else 0 end) as online_order_count,
        sum(case when channel = 'store' then amount else 0 end) as store_revenue,
        min(case when channel = 'store' then ordered_at end) as first_store_order_at,
        max(case when channel = 'store' then ordered_at end) as last_store_order_at
    from orders
    group by customer_id

),

store_only as (

    select by_customer.*
    from by_customer
    cross join as_of
    where by_customer.store_order_count > 0
      and by_customer.online_order_count = 0
      and by_customer.last_store_order_at >= {{ dbt.dateadd('day', -var('store_only_lookback_days'), 'as_of.as_of_date') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(store_only.first_store_order_at as date) as since,
        cast(store_only.store_order_count as {{ dbt.type_bigint() }}) as store_order_count,
        cast(store_only.store_revenue as decimal(18, 2)) as store_revenue,
        store_only.last_store_order_at,
        customers.home_store_id,
        customers.city
    from store_only
    inner join customers
        on customers.customer_id = store_only.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
