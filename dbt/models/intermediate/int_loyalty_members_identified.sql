-- Loyalty memberships with the customer they belong to. A person can hold several cards (a lost
-- card, a second sign-up); customer_360 consolidates them.
with

members as (

    select * from {{ ref('stg_loyalty__members') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}
    where source = 'loyalty_members'

),

identified as (

    select
        members.member_id,
        clusters.customer_id,
        members.card_number,
        members.tier,
        case members.tier
            {%- for tier in var('loyalty_tiers') %}
            when '{{ tier }}' then {{ loop.index }}
            {%- endfor %}
            else 0
        end as tier_rank,
        members.points_balance,
        members.home_store_id,
        members.joined_at
    from members
    left join clusters
        on clusters.source_record_id = members.member_id

)

select * from identified
