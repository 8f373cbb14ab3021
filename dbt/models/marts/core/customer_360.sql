-- One row per customer: purchase behaviour (RFM, lifetime value, average order value), the
-- channels they use and when they were first / last seen in each, their preferred channel and
-- favourite category, and their loyalty standing (current card, number of cards).
with

customers as (

    select customer_id from {{ ref('dim_customers') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

interactions as (

    select * from {{ ref('fct_interactions') }}
    where customer_id is not null

),

loyalty as (

    select * from {{ ref('int_loyalty_members_identified') }}
    where customer_id is not null

),

order_totals as (

    select
        customer_id,
        count(*) as order_count,
        sum(amount) as total_revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        {%- for channel in purchase_channels() %}
        sum(case when channel = '{{ channel }}' then 1 else 0 end) as {{ channel }}_order_count,
        sum(case when channel = '{{ channel }}' then amount else 0 end) as {{ channel }}_revenue,
        {%- endfor %}
        sum(case when is_click_and_collect then 1 else 0 end) as click_and_collect_order_count,
        count(distinct channel) as purchase_channel_count,
        {{ sorted_list_agg('channel') }} as purchase_channels
    from orders
    group by customer_id

),

rfm as (

    select
        order_totals.customer_id,
        {{ dbt.datediff('cast(order_totals.last_order_at as date)', 'as_of.as_of_date', 'day') }}
            as recency_days,
        ntile(5) over (order by order_totals.last_order_at, order_totals.customer_id) as r_score,
        ntile(5) over (
            order by order_totals.order_count, order_totals.total_revenue, order_totals.customer_id
        ) as f_score,
        ntile(5) over (order by order_totals.total_revenue, order_totals.customer_id) as m_score
    from order_totals
    cross join as_of

),

channel_activity as (

    select
        customer_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(distinct channel) as channel_count,
        {{ sorted_list_agg('channel') }} as channels_used,
        {%- for channel in interaction_channels() %}
        min(case when channel = '{{ channel }}' then occurred_at end) as first_seen_{{ channel }}_at,
        max(case when channel = '{{ channel }}' then occurred_at end) as last_seen_{{ channel }}_at{{ "," if not loop.last }}
        {%- endfor %}
    from interactions
    group by customer_id

),

-- Preferred channel: where the customer buys most (ties: most recently); for people who never
-- bought, where they interact most.
channel_preference as (

    select customer_id, channel as preferred_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (
                partition by customer_id
                order by sum(case when interaction_type = 'purchase' then 1 else 0 end) desc,
                         count(*) desc,
                         max(occurred_at) desc,
                         channel
            ) as preference_rank
        from interactions
        group by customer_id, channel
    ) as ranked
    where preference_rank = 1

),

category_preference as (

    select customer_id, category as favourite_category
    from (
        select
            customer_id,
            category,
            row_number() over (
                partition by customer_id
                order by count(*) desc, sum(amount) desc, category
            ) as category_rank
        from orders
        where category is not null
        group by customer_id, category
    ) as ranked
    where category_rank = 1

),

-- Loyalty: tier and points of the current card (the latest joined; tiers are per card), and how
-- many cards the person holds (lost cards, second sign-ups).
loyalty_current as (

    select customer_id, tier, tier_rank, points_balance, joined_at
    from (
        select
            customer_id,
            tier,
            tier_rank,
            points_balance,
            joined_at,
            row_number() over (
                partition by customer_id order by joined_at desc, member_id desc
            ) as card_rank
        from loyalty
    ) as ranked
    where card_rank = 1

),

loyalty_totals as (

    select
        customer_id,
        min(joined_at) as loyalty_member_since,
        count(*) as loyalty_card_count
    from loyalty
    group by customer_id

),

final as (

    select
        customers.customer_id,

        -- purchases
        cast(coalesce(order_totals.order_count, 0) as {{ dbt.type_bigint() }}) as order_count,
        cast(coalesce(order_totals.total_revenue, 0) as decimal(18, 2)) as lifetime_value,
        cast(order_totals.total_revenue / order_totals.order_count as decimal(18, 2))
            as avg_order_value,
        order_totals.first_order_at,
        order_totals.last_order_at,
        {%- for channel in purchase_channels() %}
        cast(coalesce(order_totals.{{ channel }}_order_count, 0) as {{ dbt.type_bigint() }})
            as {{ channel }}_order_count,
        cast(coalesce(order_totals.{{ channel }}_revenue, 0) as decimal(18, 2))
            as {{ channel }}_revenue,
        {%- endfor %}
        cast(coalesce(order_totals.click_and_collect_order_count, 0) as {{ dbt.type_bigint() }})
            as click_and_collect_order_count,

        -- RFM (1 = lowest, 5 = best; null for people who never bought)
        cast(rfm.recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(rfm.r_score as {{ dbt.type_int() }}) as r_score,
        cast(rfm.f_score as {{ dbt.type_int() }}) as f_score,
        cast(rfm.m_score as {{ dbt.type_int() }}) as m_score,
        case when rfm.customer_id is not null then {{ dbt.concat([
            "cast(rfm.r_score as " ~ dbt.type_string() ~ ")",
            "cast(rfm.f_score as " ~ dbt.type_string() ~ ")",
            "cast(rfm.m_score as " ~ dbt.type_string() ~ ")"]) }} end as rfm_score,

        -- channels
        order_totals.purchase_channels,
        cast(coalesce(order_totals.purchase_channel_count, 0) as {{ dbt.type_bigint() }})
            as purchase_channel_count,
        coalesce(order_totals.purchase_channel_count, 0) >= 2 as is_omnichannel,
        channel_activity.channels_used,
        cast(coalesce(channel_activity.channel_count, 0) as {{ dbt.type_bigint() }})
            as channel_count,
        channel_preference.preferred_channel,
        category_preference.favourite_category,
        channel_activity.first_seen_at,
        channel_activity.last_seen_at,
        {%- for channel in interaction_channels() %}
        channel_activity.first_seen_{{ channel }}_at,
        channel_activity.last_seen_{{ channel }}_at,
        {%- endfor %}

        -- loyalty
        case when loyalty_current.tier_rank > 0 then loyalty_current.tier end as loyalty_tier,
        cast(loyalty_current.points_balance as {{ dbt.type_bigint() }}) as loyalty_points,
        {%- set tiers = var('loyalty_tiers') %}
        {%- set tier_names = tiers.keys() | list %}
        case loyalty_current.tier
            {%- for i in range(tier_names | length - 1) %}
            when '{{ tier_names[i] }}' then '{{ tier_names[i + 1] }}'
            {%- endfor %}
        end as loyalty_next_tier,
        cast(case loyalty_current.tier
            {%- for i in range(tier_names | length - 1) %}
            when '{{ tier_names[i] }}' then {{ tiers[tier_names[i + 1]] }} - loyalty_current.points_balance
            {%- endfor %}
        end as {{ dbt.type_bigint() }}) as loyalty_points_to_next_tier,
        loyalty_totals.loyalty_member_since,
        cast(coalesce(loyalty_totals.loyalty_card_count, 0) as {{ dbt.type_bigint() }})
            as loyalty_card_count,

        as_of.as_of_date

    from customers
    cross join as_of
    left join order_totals on order_totals.customer_id = customers.customer_id
    left join rfm on rfm.customer_id = customers.customer_id
    left join channel_activity on channel_activity.customer_id = customers.customer_id
    left join channel_preference on channel_preference.customer_id = customers.customer_id
    left join category_preference on category_preference.customer_id = customers.customer_id
    left join loyalty_current on loyalty_current.customer_id = customers.customer_id
    left join loyalty_totals on loyalty_totals.customer_id = customers.customer_id

)

select * from final
