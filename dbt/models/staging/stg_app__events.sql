with

source as (

    {{ latest_version(source('raw', 'app_events'), 'event_id') }}

),

renamed as (

    select
        -- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(device_id as {{ dbt.type_string() }}) as device_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,

        -- event
        lower(trim(event_type)) as event_type,
        lower(trim(platform)) as platform,
        lower(trim(product_category)) as category,
        cast(revenue as decimal(18, 2)) as revenue,

        -- customer as known to the app
        lower(trim(login_email)) as email,
        trim(user_name) as full_name,
        cast(push_opt_in as boolean) as push_opt_in,

        -- timestamps
        cast(event_time as {{ dbt.type_timestamp() }}) as occurred_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
