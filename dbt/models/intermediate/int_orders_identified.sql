-- Every purchase in every selling channel (web shop, app, stores), one row per order, with the
-- customer it belongs to. Anonymous purchases (no identity record) keep a null customer_id so
-- revenue stays complete.
with

web_orders as (

    select * from {{ ref('stg_web__orders') }}

),

app_events as (

    select * from {{ ref('stg_app__events') }}

),

pos_transactions as (

    select * from {{ ref('stg_pos__transactions') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}

),

web as (

    select
        'web' as channel,
        'web_orders' as source,
        order_id as source_record_id,
        order_id,
        ordered_at,
        order_total as amount,
        item_count,
        category,
        fulfilment,
        pickup_store_id as store_id,
        cast(null as {{ dbt.type_string() }}) as payment_type
    from web_orders

),

app_purchases as (

    select
        'app' as channel,
        'app_events' as source,
        event_id as source_record_id,
        coalesce(order_id, event_id) as order_id,
        occurred_at as ordered_at,
        coalesce(revenue, cast(0 as decimal(18, 2))) as amount,
        cast(null as {{ dbt.type_bigint() }}) as item_count,
        category,
        -- the app feed does not say how an order is fulfilled
        'unknown' as fulfilment,
        cast(null as {{ dbt.type_string() }}) as store_id,
        cast(null as {{ dbt.type_string() }}) as payment_type,
        -- an order reported by two purchase events counts once (the first)
        row_number() over (
            partition by coalesce(order_id, event_id) order by occurred_at, event_id
        ) as order_event_rank
    from app_events
    where event_type = 'purchase'

),

app as (

    select
        channel, source, source_record_id, order_id, ordered_at, amount, item_count, category,
        fulfilment, store_id, payment_type
    from app_purchases
    where order_event_rank = 1

),

store as (

    select
        'store' as channel,
        'pos_transactions' as source,
        transaction_id as source_record_id,
        transaction_id as order_id,
        transacted_at as ordered_at,
        amount,
        cast(null as {{ dbt.type_bigint() }}) as item_count,
        category,
        'in_store' as fulfilment,
        store_id,
        payment_type
    from pos_transactions

),

orders as (

    select * from web
    union all
    select * from app
    union all
    select * from store

),

identified as (

    select
        {{ dbt.concat(["orders.channel", "':'", "orders.order_id"]) }} as order_key,
        orders.order_id,
        orders.channel,
        orders.source,
        orders.source_record_id,
        clusters.customer_id,
        orders.ordered_at,
        orders.amount,
        orders.item_count,
        orders.category,
        orders.fulfilment,
        orders.store_id,
        orders.payment_type
    from orders
    left join clusters
        on clusters.source = orders.source
        and clusters.source_record_id = orders.source_record_id

)

select * from identified
