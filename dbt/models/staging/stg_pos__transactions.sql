with

source as (

    {{ latest_version(source('raw', 'pos_transactions'), 'TRX_NO') }}

),

renamed as (

    select
        -- ids
        cast(TRX_NO as {{ dbt.type_string() }}) as transaction_id,
        cast(STORE_CODE as {{ dbt.type_string() }}) as store_id,
        cast(LOYALTY_CARD as {{ dbt.type_string() }}) as loyalty_card_number,

        -- customer as given at the till
        trim(CUST_NAME) as full_name,
        trim(CUST_PHONE) as phone,

        -- transaction
        cast(AMOUNT as decimal(18, 2)) as amount,
        lower(trim(CATEGORY)) as category,
        lower(trim(PAYMENT_TYPE)) as payment_type,

        -- timestamps
        cast(TRX_DATE as {{ dbt.type_timestamp() }}) as transacted_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
