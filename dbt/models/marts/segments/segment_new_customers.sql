-- Customers whose first purchase (any channel) was in the last `new_customer_days`: the welcome
-- journey. Intended for email (see meta).
with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

first_orders as (

    select customer_id, channel, amount, ordered_at
    from {{ ref('fct_orders') }}
    where customer_order_number = 1

),

new_customers as (

    select first_orders.*
    from first_orders
    cross join as_of
    where first_orders.ordered_at >= {{ dbt.dateadd('day', -var('new_customer_days'), 'as_of.as_of_date') }}

),

final as (

    select
        customers.customer_id,
        {{ segment_contact_columns('customers') }},
        cast(new_customers.ordered_at as date) as since,
        new_customers.ordered_at as first_order_at,
        new_customers.channel as first_order_channel,
        new_customers.amount as first_order_amount
    from new_customers
    inner join customers
        on customers.customer_id = new_customers.customer_id
    where {{ segment_consent_filter('customers') }}

)

select * from final
