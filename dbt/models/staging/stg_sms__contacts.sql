with

source as (

    {{ latest_version(source('raw', 'sms_contacts'), 'contact_id') }}

),

renamed as (

    select
        -- ids
        cast(contact_id as {{ dbt.type_string() }}) as contact_id,

        -- contact
        trim(msisdn) as phone,
        trim(name) as full_name,
        case upper(trim(opt_in))
            when 'Y' then true
            when 'N' then false
        end as is_opted_in,
        cast(messages_sent as {{ dbt.type_bigint() }}) as messages_sent,

        -- timestamps
        cast(opt_in_date as date) as opted_in_on,
        cast(last_sent_at as {{ dbt.type_timestamp() }}) as last_sent_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
