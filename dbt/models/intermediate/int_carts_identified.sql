-- Every web and app cart (latest state) with the customer it belongs to.
with

carts as (

    select * from {{ ref('stg_shop__carts') }}

),

clusters as (

    select source, source_record_id, customer_id
    from {{ source('identity', 'identity_clusters') }}
    where source = 'carts'

),

identified as (

    select
        carts.cart_id,
        clusters.customer_id,
        carts.channel,
        carts.status,
        carts.created_at,
        carts.updated_at,
        carts.item_count,
        carts.cart_value,
        carts.category,
        carts.converted_order_id
    from carts
    left join clusters
        on clusters.source_record_id = carts.cart_id

)

select * from identified
