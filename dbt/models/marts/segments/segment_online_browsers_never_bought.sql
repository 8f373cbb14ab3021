-- Customers who browsed online in the last `browser_lookback_days` (app product views,
-- add-to-cart, checkout starts, or web/app carts) but never bought in any channel. Intended for
-- browse-abandonment emails (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

browsing as (

    select customer_id, occurred_at, category
    from {{ ref('int_events_identified') }}
    where customer_id is not null
      and event_type in ('product_view', 'add_to_cart', 'checkout_start')

    union all

    select customer_id, updated_at as occurred_at, category
    from {{ ref('int_carts_identified') }}
    where customer_id is not null

),

recent_browsing as (

    select browsing.*
    from browsing
    cross join as_of
    where browsing.occurred_at >= {{ dbt.dateadd('day', -var('browser_lookback_days'), 'as_of.as_of_date') }}

),

buyers as (

    select distinct customer_id
    from {{ ref('fct_orders') }}
    where customer_id is not null

),

never_bought as (

    select recent_browsing.*
    from recent_browsing
    left join buyers
        on buyers.customer_id = recent_browsing.customer_id
    where buyers.customer_id is null

),

by_customer as (

    select
        customer_id,
        count(*) as browse_count,
        min(occurred_at) as first_browsed_at,
        max(occurred_at) as last_browsed_at
    from never_bought
    group by customer_id

),

top_category as (

    select customer_id, category
    from (
        select
            customer_id,
            category,
            row_number() over (
                partition by customer_id order by count(*) desc, max(occurred_at) desc, category
            ) as category_rank
        from never_bought
        where category is not null
        group by customer_id, category
    ) as ranked
    where category_rank = 1

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(by_customer.first_browsed_at as date) as since,
        cast(by_customer.browse_count as {{ dbt.type_bigint() }}) as browse_count,
        by_customer.last_browsed_at,
        top_category.category as top_browsed_category
    from by_customer
    inner join customers
        on customers.customer_id = by_customer.customer_id
    left join top_category
        on top_category.customer_id = by_customer.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
