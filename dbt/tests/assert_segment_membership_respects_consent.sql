-- No customer sits in a segment without consent (and a contact point) for the segment's
-- activation channel, checked on the union of all segments against dim_customers. Complements
-- the per-segment respects_consent test: a segment that forgot its consent filter fails twice.
select
    membership.segment,
    membership.customer_id,
    membership.activation_channel
from {{ ref('segment_membership') }} as membership
left join {{ ref('dim_customers') }} as d
    on d.customer_id = membership.customer_id
where d.customer_id is null
{%- for channel in consent_channels() %}
   or (membership.activation_channel = '{{ channel }}' and not {{ consent_condition(channel, 'd') }})
{%- endfor %}
