"""Customer 360: everything the warehouse knows about one customer, for the profile page.

Golden attributes with the channel each value came from; every linked source record, per channel;
why the records are one customer (rule links, Splink match weights, per-comparison contributions
through `identity.explain`); the omnichannel timeline; segments; consent per channel; merge/split
history (`identity.customer_id_history`, when that table exists); where activation sent them.

Values are raw here: this is the one page that shows a person's data in full.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.web.db import Reader
from identity.explain import model_score
from identity.golden import ATTRIBUTES
from identity.records import CONSENTS

log = logging.getLogger(__name__)

TIMELINE_ROWS = 300        # newest interactions listed (the chart shows them all, bucketed)
RECORD_IDS_SHOWN = 12      # source record ids listed per identity record
LINKS_SHOWN = 200
EXPLAINED_INLINE = 1       # Splink links whose per-comparison contributions are on the page
CONSENT_CHANNELS = {"email_opt_in": "email", "sms_opt_in": "sms", "ads_opt_in": "ads"}
RECORD_FIELDS = ("first_name", "last_name", "birth_date", "gender", "email", "phone",
                 "loyalty_id", "login_id", "device_id", "address", "city", "postcode", "country")


@dataclass
class Customer360:
    customer_id: str
    golden: dict[str, Any]
    attributes: list[dict[str, Any]]
    consent: list[dict[str, Any]]
    channels: list[dict[str, Any]]           # per channel: records, source rows
    links: list[dict[str, Any]]
    link_counts: dict[str, int]
    explained: list[dict[str, Any]]          # links with per-comparison contributions
    refused: list[dict[str, Any]]            # links to other customers that a guard refused
    timeline: list[dict[str, Any]]
    timeline_total: int
    timeline_by_channel: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    history: list[dict[str, Any]] | None     # None: the history table does not exist
    synced: list[dict[str, Any]]
    metrics: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def is_erased(reader: Reader, customer_id: str) -> bool:
    return reader.has("identity", "erased_customers") and bool(reader.scalar(
        "select count(*) from identity.erased_customers where customer_id = ?", [customer_id]))


def load_customer(settings: Settings, reader: Reader, customer_id: str,
                  explain: bool = True) -> Customer360 | None:
    """The 360 of one customer, or None when there is no such customer."""
    if not reader.has("identity", "golden_profiles"):
        raise CdpError("the warehouse has no identity tables yet: run `cdp resolve`")
    golden = reader.one("select * from identity.golden_profiles where customer_id = ?",
                        [customer_id])
    if golden is None:
        return None
    dim = (reader.one("select * from dim_customers where customer_id = ?", [customer_id])
           if reader.has("main", "dim_customers") else None)
    records = reader.rows("""
        select * from identity.identity_records where customer_id = ?
        order by source, first_seen_at, record_key""", [customer_id])
    links = _links(reader, customer_id)
    timeline_total = 0
    timeline: list[dict[str, Any]] = []
    by_channel: list[dict[str, Any]] = []
    if reader.has("main", "fct_interactions"):
        timeline = reader.rows("""
            select occurred_at, channel, interaction_type, source, source_record_id, amount,
                   category
            from fct_interactions where customer_id = ?
            order by occurred_at desc, interaction_id limit ?""", [customer_id, TIMELINE_ROWS])
        by_channel = reader.rows("""
            select channel, interaction_type, date_trunc('month', occurred_at) as month,
                   count(*) as n, sum(amount) as amount
            from fct_interactions where customer_id = ?
            group by all order by month""", [customer_id])
        timeline_total = int(reader.scalar(
            "select count(*) from fct_interactions where customer_id = ?", [customer_id]))
    segments = (reader.rows("""
        select segment, since, activation_channel from segment_membership
        where customer_id = ? order by segment""", [customer_id])
                if reader.has("main", "segment_membership") else [])
    history = None
    if reader.has("identity", "customer_id_history"):
        history = reader.rows("""
            select * from identity.customer_id_history
            where customer_id = ? or other_customer_id = ?
            order by changed_at desc""", [customer_id, customer_id])
    synced = (reader.rows("""
        select destination, segment, min(added_at) as added_at from activation.sync_state
        where customer_id = ? group by all order by destination, segment""", [customer_id])
              if reader.has("activation", "sync_state") else [])
    metrics = (reader.one("select * from customer_360 where customer_id = ?", [customer_id])
               if reader.has("main", "customer_360") else None)
    result = Customer360(
        customer_id=customer_id, golden=golden,
        attributes=_attributes(golden),
        consent=_consent(golden, dim),
        channels=_channels(reader, customer_id, records),
        links=links["inside"], link_counts=links["counts"], explained=[],
        refused=links["refused"], timeline=timeline, timeline_total=timeline_total,
        timeline_by_channel=by_channel, segments=segments, history=history, synced=synced,
        metrics=metrics)
    if explain:
        result.explained = _explain_strongest(settings, reader, records, links["inside"])
    return result


def _attributes(golden: dict[str, Any]) -> list[dict[str, Any]]:
    out = [{"name": attr, "value": golden.get(attr), "source": golden.get(f"{attr}_source")}
           for attr in ATTRIBUTES]
    for attr, plural in (("email", "emails"), ("phone", "phones"),
                         ("loyalty_id", "loyalty_ids")):
        others = [v for v in golden.get(plural) or [] if v != golden.get(attr)]
        if others:
            out.append({"name": f"other {plural}", "value": ", ".join(others),
                        "source": "other records"})
    return out


def _consent(golden: dict[str, Any], dim: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per channel: the consent activation uses (dim_customers: false unless given) and the
    latest explicit answer identity resolution found, with its channel."""
    out = []
    for flag in CONSENTS:
        out.append({
            "channel": CONSENT_CHANNELS.get(flag, flag),
            "granted": (dim or {}).get(flag),
            "latest_answer": golden.get(flag),
            "source": golden.get(f"{flag}_source"),
        })
    if dim and dim.get("email_subscription_status"):
        out[0]["note"] = f"email list status: {dim['email_subscription_status']}"
    return out


def _channels(reader: Reader, customer_id: str,
              records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per channel: its identity records (rows with identical identity fields) with a sample of
    their source record ids, and the channel's row count."""
    rows = reader.rows("""
        select source, record_key, count(*) as n,
               list(source_record_id order by source_record_id)[1:?] as ids
        from identity.identity_clusters where customer_id = ?
        group by source, record_key""", [RECORD_IDS_SHOWN, customer_id])
    ids = {r["record_key"]: r for r in rows}
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        found = ids.get(record["record_key"], {})
        grouped[record["source"]].append({
            **{k: record.get(k) for k in ("record_key", "n_rows", "first_seen_at",
                                          "last_seen_at", "status", "name_only",
                                          *RECORD_FIELDS)},
            "source_record_ids": found.get("ids") or [],
            "source_rows": found.get("n", 0),
        })
    return [{"channel": channel, "records": recs,
             "source_rows": sum(r["source_rows"] for r in recs)}
            for channel, recs in sorted(grouped.items())]


def _links(reader: Reader, customer_id: str) -> dict[str, Any]:
    """Links between the customer's records (why they are one) and links to other customers'
    records that a guard refused (why they are not one)."""
    inside = reader.rows("""
        with mine as (select record_key, source from identity.identity_records
                      where customer_id = ?)
        select l.record_l, l.record_r, a.source as source_l, b.source as source_r,
               l.link_type, l.match_weight, l.match_probability, l.refused_by
        from identity.identity_links l
        join mine a on a.record_key = l.record_l
        join mine b on b.record_key = l.record_r
        order by (a.source <> b.source) desc, l.match_weight desc nulls last, l.link_type,
                 l.record_l, l.record_r
        limit ?""", [customer_id, LINKS_SHOWN])
    counts = {r["link_type"]: r["n"] for r in reader.rows("""
        with mine as (select record_key from identity.identity_records where customer_id = ?)
        select link_type, count(*) as n from identity.identity_links
        where record_l in (select record_key from mine)
          and record_r in (select record_key from mine)
        group by link_type order by n desc""", [customer_id])}
    refused = reader.rows("""
        with mine as (select record_key from identity.identity_records where customer_id = ?),
        touching as (
            select l.*, l.record_r as other_key from identity.identity_links l
            join mine m on m.record_key = l.record_l
            union all
            select l.*, l.record_l as other_key from identity.identity_links l
            join mine m on m.record_key = l.record_r)
        select t.record_l, t.record_r, t.link_type, t.match_weight, t.refused_by,
               o.customer_id as other_customer_id
        from touching t join identity.identity_records o on o.record_key = t.other_key
        where o.customer_id is distinct from ?
        order by t.match_weight desc nulls last, t.record_l, t.record_r limit 20""",
                          [customer_id, customer_id])
    return {"inside": inside, "counts": counts, "refused": refused}


def _explain_strongest(settings: Settings, reader: Reader, records: list[dict[str, Any]],
                       links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Splink's per-comparison contributions for the strongest cross-channel Splink link(s),
    through `identity.explain.model_score` (the same numbers `cdp explain` prints)."""
    by_key = {r["record_key"]: r for r in records}
    splink = [link for link in links if link["match_weight"] is not None
              and link["link_type"].startswith("splink")]
    splink.sort(key=lambda link: (link["source_l"] == link["source_r"], -link["match_weight"]))
    out = []
    for link in splink[:EXPLAINED_INLINE]:
        try:
            score = model_score(settings, reader.con, by_key[link["record_l"]],
                                by_key[link["record_r"]])
        except Exception as exc:  # a missing or incompatible model must not break the page
            log.warning("per-comparison explanation unavailable: %s", type(exc).__name__)
            score = None
        if score:
            out.append({**link, "score": score})
    return out

