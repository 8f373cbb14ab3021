with

source as (

    {{ latest_version(source('raw', 'carts'), 'cart_id') }}

),

renamed as (

    select
        -- ids
        cast(cart_id as {{ dbt.type_string() }}) as cart_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(device_id as {{ dbt.type_string() }}) as device_id,
        cast(converted_order_id as {{ dbt.type_string() }}) as converted_order_id,

        -- cart
        lower(trim(channel)) as channel,
        lower(trim(status)) as status,
        cast(item_count as {{ dbt.type_bigint() }}) as item_count,
        cast(cart_value as decimal(18, 2)) as cart_value,
        lower(trim(category)) as category,
        lower(trim(login_email)) as email,

        -- timestamps
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
