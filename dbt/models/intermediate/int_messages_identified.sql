-- Messaging subscriptions (email service provider and SMS gateway), one row per subscriber
-- record, with the customer it belongs to: what the person gets from us and how they engage.
with

email_subscribers as (

    select * from {{ ref('stg_email__subscribers') }}

),

sms_contacts as (

    select * from {{ ref('stg_sms__contacts') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}

),

email as (

    select
        'email' as channel,
        'email_subscribers' as source,
        subscriber_id as source_record_id,
        status,
        status = 'subscribed' as is_subscribed,
        language,
        opens_30d,
        clicks_30d,
        cast(null as {{ dbt.type_bigint() }}) as messages_sent,
        subscribed_at,
        last_open_at,
        last_click_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_sent_at
    from email_subscribers

),

sms as (

    select
        'sms' as channel,
        'sms_contacts' as source,
        contact_id as source_record_id,
        case
            when is_opted_in then 'opted_in'
            when not is_opted_in then 'opted_out'
            else 'unknown'
        end as status,
        coalesce(is_opted_in, false) as is_subscribed,
        cast(null as {{ dbt.type_string() }}) as language,
        cast(null as {{ dbt.type_bigint() }}) as opens_30d,
        cast(null as {{ dbt.type_bigint() }}) as clicks_30d,
        messages_sent,
        cast(opted_in_on as {{ dbt.type_timestamp() }}) as subscribed_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_open_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_click_at,
        last_sent_at
    from sms_contacts

),

subscriptions as (

    select * from email
    union all
    select * from sms

),

identified as (

    select
        {{ dbt.concat(["subscriptions.source", "':'", "subscriptions.source_record_id"]) }} as message_subscription_key,
        subscriptions.channel,
        subscriptions.source,
        subscriptions.source_record_id,
        clusters.customer_id,
        subscriptions.status,
        subscriptions.is_subscribed,
        subscriptions.language,
        subscriptions.opens_30d,
        subscriptions.clicks_30d,
        subscriptions.messages_sent,
        subscriptions.subscribed_at,
        subscriptions.last_open_at,
        subscriptions.last_click_at,
        subscriptions.last_sent_at
    from subscriptions
    left join clusters
        on clusters.source = subscriptions.source
        and clusters.source_record_id = subscriptions.source_record_id

)

select * from identified
