-- The "today" of the warehouse: the `as_of_date` var when set, else the latest event date in
-- the data. Every recency window is measured from here, never from the clock, so a rebuild on
-- the same data gives the same segments.
{% if var('as_of_date') %}

select cast('{{ var("as_of_date") }}' as date) as as_of_date

{% else %}

with

event_times as (

    select max(ordered_at) as occurred_at from {{ ref('int_orders_identified') }}
    union all
    select max(occurred_at) from {{ ref('int_events_identified') }}
    union all
    select max(updated_at) from {{ ref('int_carts_identified') }}
    union all
    select max(created_at) from {{ ref('int_tickets_identified') }}
    union all
    select max(last_click_at) from {{ ref('int_messages_identified') }}
    union all
    select max(last_open_at) from {{ ref('int_messages_identified') }}
    union all
    select max(last_sent_at) from {{ ref('int_messages_identified') }}

)

select cast(max(occurred_at) as date) as as_of_date
from event_times

{% endif %}
