-- Customers who buy in two or more channels and whose monetary RFM score is at least
-- `high_value_min_monetary_score`: the VIPs. Intended for email (see meta).
with

customers as (

    select * from {{ ref('dim_customers') }}

),

customer_360 as (

    select * from {{ ref('customer_360') }}

),

-- The day a customer became omnichannel: their first order in their second channel.
channel_firsts as (

    select
        customer_id,
        channel,
        min(ordered_at) as first_order_at,
        row_number() over (partition by customer_id order by min(ordered_at), channel)
            as channel_rank
    from {{ ref('fct_orders') }}
    where customer_id is not null
    group by customer_id, channel

),

became_omnichannel as (

    select customer_id, first_order_at as became_omnichannel_at
    from channel_firsts
    where channel_rank = 2

),

high_value as (

    select *
    from customer_360
    where is_omnichannel
      and m_score >= {{ var('high_value_min_monetary_score') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(became_omnichannel.became_omnichannel_at as date) as since,
        high_value.lifetime_value,
        high_value.order_count,
        high_value.purchase_channels,
        high_value.rfm_score,
        high_value.preferred_channel
    from high_value
    inner join customers
        on customers.customer_id = high_value.customer_id
    inner join became_omnichannel
        on became_omnichannel.customer_id = high_value.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
