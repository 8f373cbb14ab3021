-- Subscribers who open or click our emails (at least `email_engaged_min_opens_30d` opens or
-- `email_engaged_min_clicks_30d` clicks in the ESP's last 30 days) but have not bought in the
-- last `email_engaged_no_purchase_days` (or ever). Intended for email (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

engagement as (

    select
        customer_id,
        sum(coalesce(opens_30d, 0)) as opens_30d,
        sum(coalesce(clicks_30d, 0)) as clicks_30d,
        max(last_open_at) as last_open_at,
        max(last_click_at) as last_click_at
    from {{ ref('int_messages_identified') }}
    where customer_id is not null
      and channel = 'email'
      and is_subscribed
    group by customer_id

),

engaged as (

    select *
    from engagement
    where opens_30d >= {{ var('email_engaged_min_opens_30d') }}
       or clicks_30d >= {{ var('email_engaged_min_clicks_30d') }}

),

recent_buyers as (

    select distinct orders.customer_id
    from {{ ref('fct_orders') }} as orders
    cross join as_of
    where orders.customer_id is not null
      and orders.ordered_at >= {{ dbt.dateadd('day', -var('email_engaged_no_purchase_days'), 'as_of.as_of_date') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        -- The latest open or click; when the ESP counted opens/clicks but sent no usable date
        -- (unparseable timestamps), the start of its 30-day window.
        cast(coalesce(
            case
                when engaged.last_click_at is null then engaged.last_open_at
                when engaged.last_open_at is null then engaged.last_click_at
                when engaged.last_click_at > engaged.last_open_at then engaged.last_click_at
                else engaged.last_open_at
            end,
            {{ dbt.dateadd('day', -30, 'as_of.as_of_date') }}
        ) as date) as since,
        cast(engaged.opens_30d as {{ dbt.type_bigint() }}) as opens_30d,
        cast(engaged.clicks_30d as {{ dbt.type_bigint() }}) as clicks_30d,
        engaged.last_open_at,
        engaged.last_click_at,
        customers.preferred_language
    from engaged
    cross join as_of
    inner join customers
        on customers.customer_id = engaged.customer_id
    left join recent_buyers
        on recent_buyers.customer_id = engaged.customer_id
    where recent_buyers.customer_id is null
      and {{ segment_consent_filter('customers') }}

)

select * from final
