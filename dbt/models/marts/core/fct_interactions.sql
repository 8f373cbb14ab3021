-- The omnichannel timeline: every touchpoint of every customer, one row per interaction.
-- Purchases (web, app, store), app browsing, carts, email subscription / opens / clicks, SMS,
-- calls and chats, loyalty sign-ups. The ESP and SMS gateway export counters, not single
-- messages, so their rows mark the latest open, click and send.
with

orders as (

    select * from {{ ref('int_orders_identified') }}

),

events as (

    select * from {{ ref('int_events_identified') }}
    where event_type <> 'purchase'  -- purchases come from the orders, once

),

carts as (

    select * from {{ ref('int_carts_identified') }}

),

messages as (

    select * from {{ ref('int_messages_identified') }}

),

tickets as (

    select * from {{ ref('int_tickets_identified') }}

),

loyalty as (

    select * from {{ ref('int_loyalty_members_identified') }}

),

interactions as (

    select
        customer_id, channel, 'purchase' as interaction_type, ordered_at as occurred_at,
        source, source_record_id, amount, category
    from orders

    union all

    select
        customer_id, 'app' as channel, event_type as interaction_type, occurred_at,
        'app_events' as source, event_id as source_record_id,
        cast(null as decimal(18, 2)) as amount, category
    from events

    union all

    select
        customer_id, channel,
        case status
            when 'converted' then 'cart_converted'
            when 'checkout' then 'checkout_start'
            else 'add_to_cart'
        end as interaction_type,
        updated_at as occurred_at, 'carts' as source, cart_id as source_record_id,
        cart_value as amount, category
    from carts

    union all

    select
        customer_id, channel,
        case when channel = 'email' then 'email_subscribe' else 'sms_opt_in' end
            as interaction_type,
        subscribed_at as occurred_at, source, source_record_id,
        cast(null as decimal(18, 2)) as amount, cast(null as {{ dbt.type_string() }}) as category
    from messages
    where subscribed_at is not null and (channel = 'email' or status = 'opted_in')

    union all

    select
        customer_id, channel, 'email_open' as interaction_type, last_open_at as occurred_at,
        source, source_record_id, cast(null as decimal(18, 2)) as amount,
        cast(null as {{ dbt.type_string() }}) as category
    from messages
    where last_open_at is not null

    union all

    select
        customer_id, channel, 'email_click' as interaction_type, last_click_at as occurred_at,
        source, source_record_id, cast(null as decimal(18, 2)) as amount,
        cast(null as {{ dbt.type_string() }}) as category
    from messages
    where last_click_at is not null

    union all

    select
        customer_id, channel, 'sms_received' as interaction_type, last_sent_at as occurred_at,
        source, source_record_id, cast(null as decimal(18, 2)) as amount,
        cast(null as {{ dbt.type_string() }}) as category
    from messages
    where last_sent_at is not null

    union all

    select
        customer_id, 'call_center' as channel,
        case when contact_channel = 'chat' then 'chat' else 'call' end as interaction_type,
        created_at as occurred_at, 'call_center_tickets' as source,
        ticket_id as source_record_id, cast(null as decimal(18, 2)) as amount,
        cast(null as {{ dbt.type_string() }}) as category
    from tickets

    union all

    select
        customer_id, 'loyalty' as channel, 'loyalty_join' as interaction_type,
        joined_at as occurred_at, 'loyalty_members' as source, member_id as source_record_id,
        cast(null as decimal(18, 2)) as amount, cast(null as {{ dbt.type_string() }}) as category
    from loyalty

),

final as (

    select
        {{ dbt.concat(["source", "':'", "source_record_id", "':'", "interaction_type"]) }}
            as interaction_id,
        customer_id,
        channel,
        interaction_type,
        occurred_at,
        cast(occurred_at as date) as occurred_on,
        source,
        source_record_id,
        cast(amount as decimal(18, 2)) as amount,
        category
    from interactions

)

select * from final
