with

source as (

    {{ latest_version(source('raw', 'web_orders'), 'order_id') }}

),

renamed as (

    select
        -- ids
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(pickup_store_id as {{ dbt.type_string() }}) as pickup_store_id,

        -- customer as typed at checkout (identity resolution standardises it)
        lower(trim(customer_email)) as email,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        trim(phone) as phone,
        trim(birth_date) as birth_date_text,
        trim(shipping_address) as shipping_address,
        trim(city) as city,
        trim(postal_code) as postcode,
        trim(country) as country,

        -- order
        cast(order_total as decimal(18, 2)) as order_total,
        upper(trim(currency)) as currency,
        cast(item_count as {{ dbt.type_bigint() }}) as item_count,
        lower(trim(category)) as category,
        coalesce(lower(trim(fulfilment)), 'home_delivery') as fulfilment,

        -- consent as given at checkout
        cast(email_opt_in as boolean) as email_opt_in,
        cast(sms_opt_in as boolean) as sms_opt_in,
        cast(ads_opt_in as boolean) as ads_opt_in,

        -- timestamps
        cast(ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
