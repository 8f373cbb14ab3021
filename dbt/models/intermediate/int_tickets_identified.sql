-- Call-center tickets with the customer they belong to.
with

tickets as (

    select * from {{ ref('stg_call_center__tickets') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}
    where source = 'call_center_tickets'

),

identified as (

    select
        tickets.ticket_id,
        clusters.customer_id,
        tickets.created_at,
        tickets.contact_channel,
        tickets.topic,
        tickets.resolution,
        tickets.duration_seconds
    from tickets
    left join clusters
        on clusters.source_record_id = tickets.ticket_id

)

select * from identified
