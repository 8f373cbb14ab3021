"""`resolve(settings)`: raw lake -> identity records -> links -> customers -> golden profiles.

Phases (timed, shown in the summary): standardise, link (identifier classes + deterministic
rules), train, predict (Splink), cluster (guarded), golden (survivorship), write (warehouse).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cdp.config import Settings
from cdp.summary import StepSummary
from identity import model
from identity.cluster import Edge, Facts, cluster_records
from identity.engines import Engine, get_engine
from identity.golden import build_golden_profiles
from identity.ids import customer_id
from identity.links import (
    RULE_ORDER_ALL,
    build_match_records,
    build_rule_links,
    classify_identifiers,
)
from identity.records import collapse_records, load_source_rows, standardise_rows
from identity.store import artefacts_dir, write_tables, write_text_atomic

logger = logging.getLogger(__name__)

PHASES = ("standardise", "link", "train", "predict", "cluster", "golden", "write")


@dataclass
class PhaseTimer:
    seconds: dict[str, float] = field(default_factory=dict)
    progress: Progress | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        task = self.progress.add_task(name, total=None) if self.progress else None
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)


def resolve(settings: Settings) -> StepSummary:
    """Resolve every ingested source record into customers and golden profiles.

    Reads the raw lake, writes `identity.identity_records`, `identity_links`,
    `identity_clusters`, `golden_profiles` and `identity_identifiers` to the warehouse in one
    transaction, and the trained Splink model and charts to `{artefacts}/identity/`.
    """
    started = time.perf_counter()
    progress = Progress(SpinnerColumn(), TextColumn("resolve: {task.description}"),
                        TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty())
    timer = PhaseTimer(progress=progress)
    engine = get_engine(settings)
    figures: dict[str, Any] = {}
    try:
        with progress:
            figures = _run(engine, settings, timer)
    finally:
        engine.close()
    figures["seconds"] = {k: round(v, 2) for k, v in timer.seconds.items()}
    figures["seconds_total"] = round(time.perf_counter() - started, 2)
    write_text_atomic(artefacts_dir(settings) / "resolve_summary.json",
                      json.dumps(figures, indent=2, default=str))
    return _summary(figures)


def _run(engine: Engine, settings: Settings, timer: PhaseTimer) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    artefacts = artefacts_dir(settings)
    with timer.phase("standardise"):
        load = load_source_rows(engine, settings)
        standardise_rows(engine, settings)
        collapse_records(engine, settings)
    figures["rows_in"] = load.rows_per_channel
    figures["channels_without_data"] = load.channels_without_data
    figures["missing_columns"] = load.missing_columns
    with timer.phase("link"):
        figures["identifier_classes"] = classify_identifiers(engine, settings)
        build_match_records(engine, settings)
        build_rule_links(engine)
        engine.create_table("splink_input", f"""
            select {model.SPLINK_INPUT_COLUMNS}
            from match_records
            where usable and (first_key is not null or last_key is not null
                              or birth_date is not null or email is not null or phone is not null)
        """)
    with timer.phase("train"):
        linker, model_report = model.train(engine, "splink_input", artefacts)
    with timer.phase("predict"):
        if linker is not None:
            model.predict(engine, linker,
                          min(settings.identity.match_threshold, model.ATTACH_THRESHOLD),
                          model_report)
        else:
            engine.create_table("splink_links", """
                select cast(null as varchar) as record_l, cast(null as varchar) as record_r,
                       cast(null as double) as match_weight,
                       cast(null as double) as match_probability where false""")
    figures["model"] = {
        "records": model_report.records, "comparisons": model_report.comparisons,
        "blocking": model_report.blocking, "links": model_report.predicted_links,
        "probability_two_random_records_match":
            model_report.probability_two_random_records_match,
    }
    with timer.phase("cluster"):
        figures.update(_cluster(engine, settings.identity.match_threshold))
    with timer.phase("golden"):
        engine.create_table("customer_records", """
            select m.*, c.customer_id from match_records m
            join record_customers c on c.record_key = m.record_key""")
        engine.create_table("customer_rows", """
            select r.*, c.customer_id from row_records r
            join record_customers c on c.record_key = r.record_key""")
        build_golden_profiles(engine, settings)
        figures.update(_counts(engine))
    with timer.phase("write"):
        write_tables(settings, _outputs(engine, settings.identity.match_threshold))
    return figures


def _cluster(engine: Engine, threshold: float) -> dict[str, Any]:
    """Guarded clustering in Python; working tables `record_customers` and `refusals`."""
    facts_table = engine.to_arrow("""
        select record_key, first_key, last_key, birth_date, loyalty_id, login_id, name_only
        from match_records where usable order by record_key""")
    keys = facts_table.column("record_key").to_pylist()
    index = {k: i for i, k in enumerate(keys)}
    facts = Facts(
        first_name=facts_table.column("first_key").to_pylist(),
        last_name=facts_table.column("last_key").to_pylist(),
        birth_date=facts_table.column("birth_date").to_pylist(),
        loyalty_id=facts_table.column("loyalty_id").to_pylist(),
        name_only=facts_table.column("name_only").to_pylist(),
        login_id=facts_table.column("login_id").to_pylist(),
    )
    rule_rank = " ".join(f"when '{k}' then {i}" for i, k in enumerate(RULE_ORDER_ALL))
    links = engine.to_arrow(f"""
        select record_l, record_r, link_type from (
            select record_l, record_r, link_type,
                   case link_type {rule_rank} else 99 end as rank, null as weight
            from rule_links
            union all
            select record_l, record_r,
                   case when match_probability >= ? then 'splink' else 'splink_attach' end,
                   100, match_weight from splink_links) as e
        order by rank, weight desc nulls last, record_l, record_r""", [threshold])
    edges = [Edge(index[left], index[right], kind) for left, right, kind in zip(
        links.column("record_l").to_pylist(), links.column("record_r").to_pylist(),
        links.column("link_type").to_pylist(), strict=True)
        if left in index and right in index]
    roots, refusals = cluster_records(
        facts, [e for e in edges if e.link_type != "splink_attach"],
        attach_edges=[e for e in edges if e.link_type == "splink_attach"])
    members: dict[int, list[str]] = {}
    for i, root in enumerate(roots):
        members.setdefault(root, []).append(keys[i])
    ids = {root: customer_id(m) for root, m in members.items()}
    engine.from_arrow("record_customers", pa.table({
        "record_key": pa.array(keys, pa.string()),
        "customer_id": pa.array([ids[r] for r in roots], pa.string()),
    }))
    engine.from_arrow("refusals", pa.table({
        "record_l": pa.array([keys[r.edge.left] for r in refusals], pa.string()),
        "record_r": pa.array([keys[r.edge.right] for r in refusals], pa.string()),
        "link_type": pa.array([r.edge.link_type for r in refusals], pa.string()),
        "refused_by": pa.array([r.guard for r in refusals], pa.string()),
    }))
    by_guard = Counter(r.guard for r in refusals)
    by_rule = Counter(e.link_type for e in edges)
    return {"links_by_rule": {k: v for k, v in by_rule.items()
                              if k not in ("splink", "splink_attach")},
            "links_by_model": by_rule.get("splink", 0),
            "attach_only_links": by_rule.get("splink_attach", 0),
            "refused_by_guard": dict(by_guard)}


def _counts(engine: Engine) -> dict[str, Any]:
    sizes = engine.to_arrow("""
        select count(*) as customers,
               count(*) filter (where identity_record_count = 1) as singletons,
               max(record_count) as largest_rows,
               max(identity_record_count) as largest_records
        from golden_profiles""").to_pylist()[0]
    rows = engine.to_arrow("""
        select count(*) as rows_total,
               count(*) filter (where c.customer_id is null) as rows_unresolved
        from row_records r left join record_customers c on c.record_key = r.record_key
    """).to_pylist()[0]
    records = engine.to_arrow("""
        select count(*) as records, count(*) filter (where not usable) as unresolved_records,
               count(*) filter (where name_only) as name_only_records
        from match_records""").to_pylist()[0]
    return {**sizes, **rows, **records}


def _outputs(engine: Engine, threshold: float) -> dict[str, pa.Table]:
    return {
        "identity_records": engine.to_arrow("""
            select m.record_key, m.source, c.customer_id,
                   case when c.customer_id is null then 'unresolved' else 'resolved' end
                     as status,
                   m.n_rows, m.first_seen_at, m.last_seen_at, m.first_name, m.last_name,
                   m.first_key, m.first_canon, m.last_key, m.name_swapped, m.birth_date,
                   m.gender, m.email, m.phone, m.loyalty_id, m.login_id, m.device_id,
                   m.address, m.address_key, m.city, m.city_key, m.postcode, m.country,
                   m.name_only
            from match_records m left join record_customers c on c.record_key = m.record_key
            order by m.record_key"""),
        "identity_links": engine.to_arrow("""
            with links as (
                select record_l, record_r, link_type, cast(null as double) as match_weight,
                       cast(1.0 as double) as match_probability from rule_links
                union all
                select record_l, record_r,
                       case when match_probability >= ? then 'splink' else 'splink_attach' end,
                       match_weight, match_probability
                from splink_links)
            select l.record_l, l.record_r, l.link_type, l.match_weight, l.match_probability,
                   f.refused_by,
                   coalesce(cl.customer_id = cr.customer_id, false) as same_customer
            from links l
            left join (select distinct record_l, record_r, link_type, min(refused_by) as refused_by
                       from refusals group by record_l, record_r, link_type) f
                   on f.record_l = l.record_l and f.record_r = l.record_r
                  and f.link_type = l.link_type
            left join record_customers cl on cl.record_key = l.record_l
            left join record_customers cr on cr.record_key = l.record_r
            order by l.record_l, l.record_r, l.link_type""", [threshold]),
        "identity_clusters": engine.to_arrow("""
            select r.source, r.source_record_id, c.customer_id, r.record_key
            from row_records r join record_customers c on c.record_key = r.record_key
            order by r.source, r.source_record_id"""),
        "golden_profiles": engine.to_arrow("select * from golden_profiles order by customer_id"),
        "identity_identifiers": engine.to_arrow("""
            select kind, value, class, people, records from identifier_classes
            order by kind, value"""),
    }


def _summary(f: dict[str, Any]) -> StepSummary:
    summary = StepSummary(title="resolve", figures=f)
    for channel, n in sorted(f["rows_in"].items()):
        summary.add(f"records in: {channel}", n)
    summary.add("source records in", f["rows_total"])
    summary.add("distinct identity records", f["records"])
    summary.add("unresolved records (no identifier, no name)", f["rows_unresolved"])
    summary.add("links by rule", sum(f["links_by_rule"].values()))
    summary.add("links by model (Splink)", f["links_by_model"])
    summary.add("weak model links (attach lone records only)", f["attach_only_links"])
    summary.add("merges refused by guards", sum(f["refused_by_guard"].values()))
    summary.add("customers out", f["customers"])
    summary.add("singletons", f["singletons"])
    summary.add("largest cluster (source records)", f["largest_rows"] or 0)
    classes = f["identifier_classes"]
    summary.add("shared identifiers blocked",
                sum(c.get("shared", 0) for c in classes.values()))
    summary.add("junk identifiers dropped",
                sum(c.get("junk", 0) for c in classes.values()))
    summary.add("time", "  ".join(f"{k} {v:.1f}s" for k, v in f["seconds"].items())
                + f"  (total {f['seconds_total']:.1f}s)")
    if f["channels_without_data"]:
        summary.notes.append("no ingested data for: " + ", ".join(f["channels_without_data"]))
    if f["missing_columns"]:
        summary.notes.append("mapped columns absent from the raw files (read as empty): "
                             + ", ".join(f["missing_columns"]))
    if f["refused_by_guard"]:
        summary.notes.append("guards: " + ", ".join(
            f"{k} refused {v}" for k, v in sorted(f["refused_by_guard"].items())))
    return summary
