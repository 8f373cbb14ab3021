-- Customers with a web or app cart (open or at checkout) updated in the last
-- `abandoned_cart_lookback_days`, who did not buy (in any channel) between creating the cart and
-- `abandoned_cart_window_hours` after its last update. One row per customer; the cart columns
-- describe their latest abandoned cart. Intended for reminder emails (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

carts as (

    select carts.*
    from {{ ref('int_carts_identified') }} as carts
    cross join as_of
    where carts.customer_id is not null
      and carts.status in ('open', 'checkout')
      and carts.updated_at >= {{ dbt.dateadd('day', -var('abandoned_cart_lookback_days'), 'as_of.as_of_date') }}

),

orders as (

    select customer_id, ordered_at
    from {{ ref('fct_orders') }}
    where customer_id is not null

),

carts_followed_by_purchase as (

    select distinct carts.cart_id
    from carts
    inner join orders
        on orders.customer_id = carts.customer_id
        and orders.ordered_at >= carts.created_at
        and orders.ordered_at <= {{ dbt.dateadd('hour', var('abandoned_cart_window_hours'), 'carts.updated_at') }}

),

abandoned as (

    select
        carts.*,
        row_number() over (
            partition by carts.customer_id order by carts.updated_at desc, carts.cart_id desc
        ) as recency_rank,
        count(*) over (partition by carts.customer_id) as abandoned_cart_count,
        min(carts.updated_at) over (partition by carts.customer_id) as first_abandoned_at
    from carts
    left join carts_followed_by_purchase
        on carts_followed_by_purchase.cart_id = carts.cart_id
    where carts_followed_by_purchase.cart_id is null

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(abandoned.first_abandoned_at as date) as since,
        abandoned.cart_id,
        abandoned.channel as cart_channel,
        abandoned.status as cart_status,
        cast(abandoned.cart_value as decimal(18, 2)) as cart_value,
        abandoned.category as cart_category,
        abandoned.updated_at as abandoned_at,
        cast(abandoned.abandoned_cart_count as {{ dbt.type_bigint() }}) as abandoned_cart_count
    from abandoned
    inner join customers
        on customers.customer_id = abandoned.customer_id
    where abandoned.recency_rank = 1
      and {{ segment_consent_filter('customers') }}

)

select * from final
