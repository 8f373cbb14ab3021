-- Loyalty members whose current card is within `loyalty_near_tier_share` of the next tier's
-- floor (tier floors: var `loyalty_tiers`): a nudge to spend a little more. Intended for SMS
-- (see meta). `since` is the member's last points-earning purchase (store or web), or the day
-- the card was issued: the programme exports balances, not their history.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

customer_360 as (

    select * from {{ ref('customer_360') }}

),

near_next_tier as (

    select *
    from customer_360
    where loyalty_next_tier is not null
      and loyalty_points_to_next_tier > 0
      {%- set tiers = var('loyalty_tiers') %}
      {%- set tier_names = tiers.keys() | list %}
      and loyalty_points_to_next_tier <= {{ var('loyalty_near_tier_share') }} * case loyalty_next_tier
          {%- for name in tier_names[1:] %}
          when '{{ name }}' then {{ tiers[name] }}
          {%- endfor %}
      end

),

last_points_purchase as (

    select customer_id, max(ordered_at) as last_points_purchase_at
    from {{ ref('fct_orders') }}
    where customer_id is not null and channel in ('store', 'web')
    group by customer_id

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(coalesce(last_points_purchase.last_points_purchase_at,
                      near_next_tier.loyalty_member_since) as date) as since,
        near_next_tier.loyalty_tier,
        near_next_tier.loyalty_points,
        near_next_tier.loyalty_next_tier,
        near_next_tier.loyalty_points_to_next_tier,
        customers.home_store_id
    from near_next_tier
    inner join customers
        on customers.customer_id = near_next_tier.customer_id
    left join last_points_purchase
        on last_points_purchase.customer_id = near_next_tier.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
