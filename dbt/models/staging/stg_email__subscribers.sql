with

source as (

    {{ latest_version(source('raw', 'email_subscribers'), 'subscriber_id') }}

),

renamed as (

    select
        -- ids
        cast(subscriber_id as {{ dbt.type_string() }}) as subscriber_id,

        -- subscriber
        lower(trim(email)) as email,
        trim(first_name) as first_name,
        lower(trim(status)) as status,
        lower(trim(language)) as language,

        -- engagement (the ESP's rolling 30-day counters)
        cast(opens_30d as {{ dbt.type_bigint() }}) as opens_30d,
        cast(clicks_30d as {{ dbt.type_bigint() }}) as clicks_30d,

        -- timestamps
        cast(subscribed_at as {{ dbt.type_timestamp() }}) as subscribed_at,
        cast(last_open_at as {{ dbt.type_timestamp() }}) as last_open_at,
        cast(last_click_at as {{ dbt.type_timestamp() }}) as last_click_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
