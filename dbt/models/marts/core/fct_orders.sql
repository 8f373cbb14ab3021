-- One row per order in every selling channel: web shop, app and stores, with how it was
-- fulfilled (home delivery, click-and-collect, in store).
with

orders as (

    select * from {{ ref('int_orders_identified') }}

),

final as (

    select
        order_key,
        order_id,
        channel,
        customer_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        cast({{ dbt.date_trunc('month', 'ordered_at') }} as date) as order_month,
        cast(amount as decimal(18, 2)) as amount,
        cast(item_count as {{ dbt.type_bigint() }}) as item_count,
        category,
        fulfilment,
        fulfilment = 'click_and_collect' as is_click_and_collect,
        store_id,
        payment_type,
        cast(case when customer_id is not null then row_number() over (
            partition by customer_id order by ordered_at, order_key
        ) end as {{ dbt.type_bigint() }}) as customer_order_number
    from orders

)

select * from final
