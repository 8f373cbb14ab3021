"""Golden profiles: one row per customer, each attribute chosen by explicit survivorship rules.

For every attribute only valid values compete (standardisation turned invalid ones into null and
junk identifiers were removed). Among them:

| attribute kind | order of rules |
|---|---|
| stable (names, birth date, gender, loyalty id) | source trust, frequency, recency |
| changeable (email, phone, address, city, postcode, country) | source trust, recency, frequency |

Source trust is `identity.source_trust` (most trusted first; unlisted channels come last);
frequency is the number of source rows carrying the value in that channel; recency is the last
time a row carried it. Remaining ties go to the smallest value, so the result is deterministic.
Each chosen value records its channel in `<attr>_source`.

Consent is resolved conservatively per flag: the latest explicit value wins, an opt-out wins a
tie, and no explicit value at all leaves it null (unknown is not consent).
"""

from __future__ import annotations

import pyarrow as pa

from cdp.config import Settings
from identity.engines.base import Engine
from identity.records import CONSENTS

STABLE = ("first_name", "last_name", "birth_date", "gender", "loyalty_id")
CHANGEABLE = ("email", "phone", "address", "city", "postcode", "country")
ATTRIBUTES = STABLE + CHANGEABLE
UNTRUSTED_RANK = 1_000_000


def _trust_table(engine: Engine, settings: Settings) -> None:
    order = list(settings.identity.source_trust)
    engine.from_arrow("source_trust", pa.table({
        "source": pa.array(order, pa.string()),
        "trust_rank": pa.array(range(len(order)), pa.int64()),
    }))


def _attribute_sql(attr: str) -> str:
    frequency, recency = "n desc", "last_seen desc"
    tie_break = f"{frequency}, {recency}" if attr in STABLE else f"{recency}, {frequency}"
    return f"""
        select customer_id, value as {attr}, source as {attr}_source from (
            select v.*, row_number() over (
                       partition by customer_id
                       order by coalesce(t.trust_rank, {UNTRUSTED_RANK}), {tie_break}, value
                   ) as rn
            from (select customer_id, {attr} as value, source, sum(n_rows) as n,
                         max(last_seen_at) as last_seen
                  from customer_records where {attr} is not null
                  group by customer_id, {attr}, source) as v
            left join source_trust t on t.source = v.source) as ranked
        where rn = 1"""


def _consent_sql(flag: str) -> str:
    # false sorts before true: at the same instant an opt-out wins
    return f"""
        select customer_id, {flag}, source as {flag}_source from (
            select customer_id, {flag}, source, row_number() over (
                       partition by customer_id order by event_at desc, {flag}) as rn
            from customer_rows where {flag} is not null) as ranked
        where rn = 1"""


def _values_or_null(column: str) -> str:
    # the sorted distinct values, null when there are none (said explicitly: DuckDB's
    # array_agg gives null over no rows, Spark's an empty array)
    return (f"case when count({column}) > 0 then array_sort(array_agg(distinct {column}) "
            f"filter (where {column} is not null)) end")


def build_golden_profiles(engine: Engine, settings: Settings) -> None:
    """Working table `golden_profiles` from `customer_records` (identity records with their
    customer_id) and `customer_rows` (source rows with customer_id, event time and consent)."""
    _trust_table(engine, settings)
    for attr in ATTRIBUTES:
        # each is read once, by golden_profiles below: an engine may inline it there
        engine.create_table(f"golden_{attr}", _attribute_sql(attr), single_use=True)
    for flag in CONSENTS:
        engine.create_table(f"golden_{flag}", _consent_sql(flag), single_use=True)
    parts = [*ATTRIBUTES, *CONSENTS]
    joins = "\n".join(f"left join golden_{p} using (customer_id)" for p in parts)
    single = ", ".join(
        f"golden_{a}.{a}" for a in ("first_name", "last_name", "email", "phone", "birth_date",
                                   "gender", "address", "city", "postcode", "country",
                                   "loyalty_id"))
    consents = ", ".join(f"golden_{c}.{c}" for c in CONSENTS)
    sources = ", ".join(f"golden_{p}.{p}_source" for p in parts)
    engine.create_table("golden_profiles", f"""
        with lists as (
            select customer_id,
                   {_values_or_null("email")} as emails,
                   {_values_or_null("phone")} as phones,
                   {_values_or_null("loyalty_id")} as loyalty_ids,
                   array_sort(array_agg(distinct source)) as channels,
                   cast(sum(n_rows) as bigint) as record_count,
                   count(*) as identity_record_count,
                   min(first_seen_at) as first_seen_at,
                   max(last_seen_at) as last_seen_at
            from customer_records group by customer_id)
        select lists.customer_id, {single}, lists.emails, lists.phones, lists.loyalty_ids,
               lists.channels, lists.record_count, lists.identity_record_count,
               {consents}, lists.first_seen_at, lists.last_seen_at, {sources}
        from lists
        {joins}""")
    for p in parts:
        engine.drop_table(f"golden_{p}")
