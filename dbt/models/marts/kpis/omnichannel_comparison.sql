-- Omnichannel vs single-channel buyers over their whole history: do customers who buy in 2+
-- channels (web, app, store) spend more? One row per customer type; the index columns divide
-- by the single-channel figure (the industry claim: omnichannel customers spend ~1.7x).
with

buyers as (

    select
        case when is_omnichannel then 'omnichannel' else 'single_channel' end as customer_type,
        order_count,
        lifetime_value
    from {{ ref('customer_360') }}
    where order_count > 0

),

by_type as (

    select
        customer_type,
        count(*) as customers,
        sum(order_count) as orders,
        sum(lifetime_value) as revenue
    from buyers
    group by customer_type

),

per_customer as (

    select
        customer_type,
        customers,
        orders,
        revenue,
        revenue / customers as revenue_per_customer,
        orders * 1.0 / customers as orders_per_customer,
        revenue / nullif(orders, 0) as avg_order_value
    from by_type

),

single as (

    select * from per_customer where customer_type = 'single_channel'

),

final as (

    select
        per_customer.customer_type,
        cast(per_customer.customers as {{ dbt.type_bigint() }}) as customers,
        cast(per_customer.orders as {{ dbt.type_bigint() }}) as orders,
        cast(per_customer.revenue as decimal(18, 2)) as revenue,
        cast(per_customer.revenue_per_customer as decimal(18, 2)) as revenue_per_customer,
        cast(per_customer.orders_per_customer as decimal(18, 4)) as orders_per_customer,
        cast(per_customer.avg_order_value as decimal(18, 2)) as avg_order_value,
        cast(per_customer.revenue_per_customer / nullif(single.revenue_per_customer, 0)
            as decimal(18, 4)) as spend_index,
        cast(per_customer.orders_per_customer / nullif(single.orders_per_customer, 0)
            as decimal(18, 4)) as frequency_index,
        cast(per_customer.avg_order_value / nullif(single.avg_order_value, 0)
            as decimal(18, 4)) as basket_index
    from per_customer
    left join single on 1 = 1

)

select * from final
