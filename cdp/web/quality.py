"""Identity-quality figures: what the explorer's quality page and the static report show.

Records in vs customers out per channel, cluster sizes, the match-weight histogram, identifier
values that were not allowed to link (shared / junk), guard refusals and, where a truth file was
scored (`cdp evaluate`), precision and recall. Identifier values are masked here: this content
goes into a file people pass around.
"""

from __future__ import annotations

import json
import math
from typing import Any

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates.masking import mask_value
from cdp.web.db import Reader
from identity.store import artefacts_dir

SHARED_LISTED = 50
# Buckets of source rows per customer for the cluster-size distribution.
SIZE_BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None))


def _bucket_sql(column: str) -> str:
    """The lower bound of the SIZE_BUCKETS bucket of an integer column (bounds are code)."""
    cases = " ".join(
        f"when {column} {'>= ' + str(lo) if hi is None else f'between {lo} and {hi}'} then {lo}"
        for lo, hi in SIZE_BUCKETS)
    return f"case {cases} end"


def bucket_label(lo: int) -> str:
    for low, high in SIZE_BUCKETS:
        if low == lo:
            return str(lo) if high == lo else (f"{lo}+" if high is None else f"{lo}-{high}")
    return str(lo)


def threshold_weight(probability: float) -> float:
    """The match weight (log2 Bayes factor scale Splink uses) of a match probability."""
    probability = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log2(probability / (1 - probability))


def read_json(path: Any) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def identity_quality(settings: Settings, reader: Reader) -> dict[str, Any]:
    """Every figure of the identity-quality page and report (identifier values masked)."""
    if not reader.has("identity", "identity_clusters"):
        raise CdpError("the warehouse has no identity tables yet: run `cdp resolve`")
    per_channel = reader.rows("""
        with rows as (
            select source, count(*) as source_rows, count(distinct customer_id) as customers
            from identity.identity_clusters group by source),
        records as (
            select source, count(*) as identity_records,
                   sum(case when status = 'resolved' then 0 else n_rows end) as unresolved_rows
            from identity.identity_records group by source),
        only_here as (
            select source, count(*) as single_channel_customers from (
                select customer_id, any_value(source) as source
                from identity.identity_clusters group by customer_id
                having count(distinct source) = 1) group by source)
        select coalesce(r.source, i.source) as channel,
               coalesce(r.source_rows, 0) + coalesce(i.unresolved_rows, 0) as records_in,
               coalesce(i.identity_records, 0) as identity_records,
               coalesce(r.customers, 0) as customers_out,
               coalesce(i.unresolved_rows, 0) as unresolved,
               coalesce(o.single_channel_customers, 0) as only_this_channel
        from rows r full join records i using (source)
        left join only_here o on o.source = coalesce(r.source, i.source)
        order by records_in desc""")
    totals = reader.one("""
        select (select count(*) from identity.identity_clusters) as clustered_rows,
               (select coalesce(sum(n_rows), 0) from identity.identity_records
                where status <> 'resolved') as unresolved_rows,
               (select count(*) from identity.identity_records) as identity_records,
               (select count(distinct customer_id) from identity.identity_clusters) as customers
        """) or {}
    totals["records_in"] = (totals.get("clustered_rows") or 0) + (totals.get("unresolved_rows")
                                                                  or 0)
    sizes = reader.rows(f"""
        with per_customer as (
            select customer_id, count(*) as source_rows, count(distinct source) as channels
            from identity.identity_clusters group by customer_id)
        select {_bucket_sql('source_rows')} as bucket, count(*) as customers
        from per_customer group by bucket order by min(source_rows)""")
    for row in sizes:
        row["label"] = bucket_label(int(row["bucket"]))
    channels_per_customer = reader.rows("""
        select channels, count(*) as customers from (
            select customer_id, count(distinct source) as channels
            from identity.identity_clusters group by customer_id)
        group by channels order by channels""")
    weights = reader.rows("""
        select floor(match_weight) as bin, link_type, count(*) as links
        from identity.identity_links where match_weight is not null
        group by all order by bin, link_type""")
    links = reader.rows("""
        select link_type, count(*) as links,
               count(*) filter (where refused_by is not null) as refused
        from identity.identity_links group by link_type order by links desc""")
    refusals = reader.rows("""
        select refused_by as guard, count(*) as links from identity.identity_links
        where refused_by is not null group by 1 order by 2 desc""")
    classes = reader.rows("""
        select kind, class, count(*) as values, sum(records) as records
        from identity.identity_identifiers group by all order by kind, class""")
    blocked = reader.rows("""
        select kind, value, class, people, records from identity.identity_identifiers
        where class <> 'personal' order by records desc nulls last, kind, value limit ?""",
                          [SHARED_LISTED])
    blocked_total = int(reader.scalar(
        "select count(*) from identity.identity_identifiers where class <> 'personal'") or 0)
    for row in blocked:
        row["value"] = mask_value(row["value"], pii=True)
    evaluation = read_json(artefacts_dir(settings) / "evaluation.json")
    if evaluation:
        evaluation.pop("truth_file", None)  # a local path: not needed to read the figures
    summary = read_json(artefacts_dir(settings) / "resolve_summary.json") or {}
    return {
        "per_channel": per_channel, "totals": totals, "sizes": sizes,
        "channels_per_customer": channels_per_customer, "weights": weights, "links": links,
        "refusals": refusals, "classes": classes, "blocked": blocked,
        "blocked_total": blocked_total, "evaluation": evaluation,
        "threshold": settings.identity.match_threshold,
        "threshold_weight": threshold_weight(settings.identity.match_threshold),
        "largest_records": summary.get("largest_records"),
        "singletons": summary.get("singletons"),
    }
