-- One row per customer: the golden profile from identity resolution, consent per activation
-- channel (unknown = no consent), preferred language and home store.
with

profiles as (

    select * from {{ source('identity', 'golden_profiles') }}

),

messages as (

    select * from {{ ref('int_messages_identified') }}
    where customer_id is not null

),

loyalty as (

    select * from {{ ref('int_loyalty_members_identified') }}
    where customer_id is not null

),

store_orders as (

    select * from {{ ref('int_orders_identified') }}
    where customer_id is not null and store_id is not null

),

latest_email_subscription as (

    select customer_id, status, language
    from (
        select
            customer_id,
            status,
            language,
            row_number() over (
                partition by customer_id order by subscribed_at desc, source_record_id desc
            ) as recency_rank
        from messages
        where channel = 'email'
    ) as ranked
    where recency_rank = 1

),

latest_membership as (

    select customer_id, home_store_id
    from (
        select
            customer_id,
            home_store_id,
            row_number() over (
                partition by customer_id order by joined_at desc, member_id desc
            ) as recency_rank
        from loyalty
        where home_store_id is not null
    ) as ranked
    where recency_rank = 1

),

most_visited_store as (

    select customer_id, store_id
    from (
        select
            customer_id,
            store_id,
            row_number() over (
                partition by customer_id order by count(*) desc, max(ordered_at) desc, store_id
            ) as visit_rank
        from store_orders
        group by customer_id, store_id
    ) as ranked
    where visit_rank = 1

),

final as (

    select
        profiles.customer_id,
        profiles.first_name,
        profiles.last_name,
        profiles.email,
        profiles.phone,
        cast(profiles.birth_date as date) as birth_date,
        profiles.gender,
        profiles.address,
        profiles.city,
        profiles.postcode,
        profiles.country,
        profiles.loyalty_id,
        cast(profiles.record_count as {{ dbt.type_bigint() }}) as record_count,

        -- Email: an explicit opt-out anywhere (ESP unsubscribe or bounce, or the latest consent
        -- given in any channel being "no") wins; otherwise an ESP subscription or a "yes".
        (
            (coalesce(latest_email_subscription.status, '') = 'subscribed'
                or coalesce(profiles.email_opt_in, false))
            and coalesce(latest_email_subscription.status, '') not in ('unsubscribed', 'bounced')
            and coalesce(profiles.email_opt_in, true)
        ) as email_opt_in,
        coalesce(profiles.sms_opt_in, false) as sms_opt_in,
        coalesce(profiles.ads_opt_in, false) as ads_opt_in,
        latest_email_subscription.status as email_subscription_status,

        latest_email_subscription.language as preferred_language,
        coalesce(latest_membership.home_store_id, most_visited_store.store_id) as home_store_id,
        cast(profiles.first_seen_at as {{ dbt.type_timestamp() }}) as first_seen_at,
        cast(profiles.last_seen_at as {{ dbt.type_timestamp() }}) as last_seen_at

    from profiles
    left join latest_email_subscription
        on latest_email_subscription.customer_id = profiles.customer_id
    left join latest_membership
        on latest_membership.customer_id = profiles.customer_id
    left join most_visited_store
        on most_visited_store.customer_id = profiles.customer_id

)

select * from final
