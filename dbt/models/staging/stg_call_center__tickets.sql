with

source as (

    {{ latest_version(source('raw', 'call_center_tickets'), 'ticket_id') }}

),

renamed as (

    select
        -- ids
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,

        -- caller
        trim(caller_number) as phone,
        trim(caller_name) as full_name,
        lower(trim(email)) as email,

        -- ticket
        lower(trim(topic)) as topic,
        coalesce(lower(trim(contact_channel)), 'phone') as contact_channel,
        lower(trim(resolution)) as resolution,
        cast(duration_sec as {{ dbt.type_bigint() }}) as duration_seconds,

        -- timestamps
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,

        -- lineage
        _batch_id as batch_id,
        cast(_ingested_at as {{ dbt.type_timestamp() }}) as ingested_at

    from source

)

select * from renamed
