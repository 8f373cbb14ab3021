with

source as (

    {{ latest_version(source('raw', 'loyalty_members'), 'member_id') }}

),

renamed as (

    select
        -- ids
        cast(member_id as {{ dbt.type_string() }}) as member_id,
        cast(card_number as {{ dbt.type_string() }}) as card_number,
        cast(home_store as {{ dbt.type_string() }}) as home_store_id,

        -- member as typed at sign-up
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        trim(birth_date) as birth_date_text,
        trim(gender) as gender,
        lower(trim(email)) as email,
        trim(mobile) as phone,
        trim(city) as city,
        trim(district) as district,

        -- programme
        lower(trim(tier)) as tier,
        cast(points_balance as {{ dbt.type_bigint() }}) as points_balance,

        -- consent
        cast(email_consent as boolean) as email_opt_in,
        cast(sms_consent as boolean) as sms_opt_in,
        cast(ads_consent as boolean) as ads_opt_in,

        -- timestamps
        cast(joined_at as {{ dbt.type_timestamp() }}) as joined_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
