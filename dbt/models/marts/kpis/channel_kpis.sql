-- Per calendar month and channel: reach, conversion, orders and revenue, and how omnichannel
-- customers (bought in 2+ of web, app, store) compare with single-channel customers.
-- channel = 'all' rows cover every channel together (the month's totals).
--
-- reach                 customers with any interaction in the channel in the month
-- converted_customers   of those, customers who bought (in any channel) in the same month
-- buyers / orders / revenue   purchases made in the channel in the month (revenue includes
--                       anonymous purchases; buyers and the omni/single split only identified ones)
-- omnichannel_* / single_channel_*   the month's buyers in the channel by lifetime customer type
with

interactions as (

    select
        customer_id,
        channel,
        cast({{ dbt.date_trunc('month', 'occurred_at') }} as date) as month
    from {{ ref('fct_interactions') }}
    where customer_id is not null

),

orders as (

    select
        fct_orders.order_month as month,
        fct_orders.channel,
        fct_orders.customer_id,
        fct_orders.amount,
        customer_360.is_omnichannel
    from {{ ref('fct_orders') }} as fct_orders
    left join {{ ref('customer_360') }} as customer_360
        on customer_360.customer_id = fct_orders.customer_id

),

reached as (

    select distinct month, channel, customer_id from interactions
    union all
    select distinct month, 'all' as channel, customer_id from interactions

),

monthly_buyers as (

    select distinct month, customer_id from orders where customer_id is not null

),

reach as (

    select
        reached.month,
        reached.channel,
        count(*) as reach,
        sum(case when monthly_buyers.customer_id is not null then 1 else 0 end)
            as converted_customers
    from reached
    left join monthly_buyers
        on monthly_buyers.month = reached.month
        and monthly_buyers.customer_id = reached.customer_id
    group by reached.month, reached.channel

),

orders_by_channel as (

    select month, channel, customer_id, amount, is_omnichannel from orders
    union all
    select month, 'all' as channel, customer_id, amount, is_omnichannel from orders

),

sales as (

    select
        month,
        channel,
        count(*) as orders,
        sum(amount) as revenue,
        count(distinct customer_id) as buyers,
        count(distinct case when is_omnichannel then customer_id end) as omnichannel_buyers,
        sum(case when is_omnichannel then 1 else 0 end) as omnichannel_orders,
        sum(case when is_omnichannel then amount else 0 end) as omnichannel_revenue,
        count(distinct case when not is_omnichannel then customer_id end)
            as single_channel_buyers,
        sum(case when not is_omnichannel then 1 else 0 end) as single_channel_orders,
        sum(case when not is_omnichannel then amount else 0 end) as single_channel_revenue
    from orders_by_channel
    group by month, channel

),

months_channels as (

    select month, channel from reach
    union
    select month, channel from sales

),

final as (

    select
        months_channels.month,
        months_channels.channel,
        cast(coalesce(reach.reach, 0) as {{ dbt.type_bigint() }}) as reach,
        cast(coalesce(reach.converted_customers, 0) as {{ dbt.type_bigint() }})
            as converted_customers,
        cast(reach.converted_customers * 1.0 / nullif(reach.reach, 0) as decimal(18, 4))
            as conversion_rate,
        cast(coalesce(sales.buyers, 0) as {{ dbt.type_bigint() }}) as buyers,
        cast(coalesce(sales.orders, 0) as {{ dbt.type_bigint() }}) as orders,
        cast(coalesce(sales.revenue, 0) as decimal(18, 2)) as revenue,
        cast(sales.revenue / nullif(sales.orders, 0) as decimal(18, 2)) as avg_order_value,
        cast(coalesce(sales.omnichannel_buyers, 0) as {{ dbt.type_bigint() }})
            as omnichannel_buyers,
        cast(coalesce(sales.omnichannel_orders, 0) as {{ dbt.type_bigint() }})
            as omnichannel_orders,
        cast(coalesce(sales.omnichannel_revenue, 0) as decimal(18, 2)) as omnichannel_revenue,
        cast(coalesce(sales.single_channel_buyers, 0) as {{ dbt.type_bigint() }})
            as single_channel_buyers,
        cast(coalesce(sales.single_channel_orders, 0) as {{ dbt.type_bigint() }})
            as single_channel_orders,
        cast(coalesce(sales.single_channel_revenue, 0) as decimal(18, 2))
            as single_channel_revenue,
        cast(sales.omnichannel_revenue / nullif(sales.omnichannel_buyers, 0) as decimal(18, 2))
            as omnichannel_revenue_per_buyer,
        cast(sales.single_channel_revenue / nullif(sales.single_channel_buyers, 0)
            as decimal(18, 2)) as single_channel_revenue_per_buyer,
        cast(sales.omnichannel_orders * 1.0 / nullif(sales.omnichannel_buyers, 0)
            as decimal(18, 4)) as omnichannel_orders_per_buyer,
        cast(sales.single_channel_orders * 1.0 / nullif(sales.single_channel_buyers, 0)
            as decimal(18, 4)) as single_channel_orders_per_buyer,
        cast(
            (sales.omnichannel_revenue / nullif(sales.omnichannel_buyers, 0))
            / nullif(sales.single_channel_revenue / nullif(sales.single_channel_buyers, 0), 0)
            as decimal(18, 4)
        ) as omnichannel_spend_index
    from months_channels
    left join reach
        on reach.month = months_channels.month and reach.channel = months_channels.channel
    left join sales
        on sales.month = months_channels.month and sales.channel = months_channels.channel

)

select * from final
