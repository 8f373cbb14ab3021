{#
  Consent rules for activation, one place for the models and the tests.

  Each segment declares the channel it is meant for in its YAML: `meta: {activation_channel: ...}`
    email -> email_opt_in and an email address
    sms   -> sms_opt_in and a phone number
    ads   -> ads_opt_in and an email or phone to match on (ad platforms match hashed identifiers)
    none  -> no outbound contact (e.g. on-site personalisation): no consent needed
  Unknown consent (null) is no consent.
#}
{% macro consent_channels() -%}
  {{ return(['email', 'sms', 'ads', 'none']) }}
{%- endmacro %}

{% macro consent_condition(channel, alias) -%}
  {%- set p = alias ~ '.' if alias else '' -%}
  {%- if channel == 'email' -%}
    (coalesce({{ p }}email_opt_in, false) and {{ p }}email is not null)
  {%- elif channel == 'sms' -%}
    (coalesce({{ p }}sms_opt_in, false) and {{ p }}phone is not null)
  {%- elif channel == 'ads' -%}
    (coalesce({{ p }}ads_opt_in, false) and ({{ p }}email is not null or {{ p }}phone is not null))
  {%- elif channel == 'none' -%}
    (1 = 1)
  {%- else -%}
    {{ exceptions.raise_compiler_error("unknown activation channel " ~ channel ~ "; use one of " ~ consent_channels() | join(', ')) }}
  {%- endif -%}
{%- endmacro %}

{#
  The activation channel of a segment model, from its YAML meta. Only known at execution time
  (YAML properties are applied after the SQL is parsed); at parse time a placeholder is returned.
#}
{% macro activation_channel(node=none) -%}
  {%- if not execute -%}
    {{ return('none') }}
  {%- endif -%}
  {%- set n = node if node is not none else model -%}
  {%- if n.resource_type == 'unit_test' -%}
    {#- unit tests compile without the graph, so the model's meta is out of reach -#}
    {{ exceptions.raise_compiler_error(n.name ~ ": a unit test of a segment must set overrides: {macros: {activation_channel: <channel>}}") }}
  {%- endif -%}
  {%- set channel = (n.config.meta or {}).get('activation_channel') or (n.meta or {}).get('activation_channel') -%}
  {%- if channel not in consent_channels() -%}
    {{ exceptions.raise_compiler_error(n.name ~ ": set meta.activation_channel in its YAML to one of " ~ consent_channels() | join(', ')) }}
  {%- endif -%}
  {{ return(channel) }}
{%- endmacro %}

{# The consent filter of the current segment model, for its `where` clause. #}
{% macro segment_consent_filter(alias) -%}
  {{ consent_condition(activation_channel(), alias) }}
{%- endmacro %}

{# The columns every segment row carries for activation (contact points, names, consent). #}
{% macro segment_contact_columns(alias) -%}
    {{ alias }}.email,
    {{ alias }}.phone,
    {{ alias }}.first_name,
    {{ alias }}.last_name,
    {{ alias }}.email_opt_in,
    {{ alias }}.sms_opt_in,
    {{ alias }}.ads_opt_in
{%- endmacro %}
