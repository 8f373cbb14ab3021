-- Every app analytics event with the customer it belongs to (null when identity resolution has
-- no record of it).
with

app_events as (

    select * from {{ ref('stg_app__events') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}
    where source = 'app_events'

),

identified as (

    select
        app_events.event_id,
        clusters.customer_id,
        app_events.device_id,
        app_events.event_type,
        app_events.occurred_at,
        app_events.category,
        app_events.order_id,
        app_events.revenue,
        app_events.platform
    from app_events
    left join clusters
        on clusters.source_record_id = app_events.event_id

)

select * from identified
