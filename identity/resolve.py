"""`resolve(settings)`: raw lake -> identity records -> links -> customers -> golden profiles.

Phases (timed, shown in the summary): standardise, link (identifier classes + deterministic
rules), train, predict (Splink), cluster (guarded, steward overrides), ids (stable customer ids
mapped from the previous run), golden (survivorship), write (warehouse, one transaction).
`resolve(settings, incremental=True)` runs `identity.incremental` instead.
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
from cdp.lake import committed_batches
from cdp.summary import StepSummary
from identity import model
from identity import overrides as steward
from identity.cluster import MUST_LINK, Edge, Facts, Refusal, cluster_records, paused_gc
from identity.engines import Engine, get_engine
from identity.golden import build_golden_profiles
from identity.links import (
    RULE_ORDER_ALL,
    build_match_records,
    build_rule_links,
    classify_identifiers,
)
from identity.records import CONSENTS, PAYLOAD, collapse_records, load_source_rows, standardise_rows
from identity.schedule import record_full_run
from identity.stable_ids import Assignment, Overlap, assign_ids, attach_evidence
from identity.state import (
    PreviousState,
    RunRecord,
    new_run_id,
    persist_run,
    read_state,
    utc_now,
)
from identity.store import artefacts_dir, write_tables, write_text_atomic

logger = logging.getLogger(__name__)

PHASES = ("standardise", "link", "train", "predict", "cluster", "ids", "golden", "write")


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


def resolve(settings: Settings, incremental: bool = False,
            trigger: str | None = None) -> StepSummary:
    """Resolve every ingested source record into customers and golden profiles.

    Reads the raw lake, writes `identity.identity_records`, `identity_links`,
    `identity_clusters`, `golden_profiles` and `identity_identifiers` to the warehouse in one
    transaction, together with the id registry, history and run log (`identity.state`), and
    the trained Splink model and charts to `{artefacts}/identity/`. Customer ids carry over
    from the previous run (`identity.stable_ids`); steward overrides are honoured.
    With `incremental`, only newly ingested batches are linked (`identity.incremental`).
    `trigger` (e.g. the Airflow run that asked) is kept in the run log.
    """
    if incremental:
        from identity.incremental import resolve_incremental

        return resolve_incremental(settings, trigger)
    started = time.perf_counter()
    progress = Progress(SpinnerColumn(), TextColumn("resolve: {task.description}"),
                        TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty())
    timer = PhaseTimer(progress=progress)
    engine = get_engine(settings)
    figures: dict[str, Any] = {}
    try:
        with progress:
            figures = _run(engine, settings, timer, trigger)
    finally:
        engine.close()
    figures["seconds"] = {k: round(v, 2) for k, v in timer.seconds.items()}
    figures["seconds_total"] = round(time.perf_counter() - started, 2)
    write_text_atomic(artefacts_dir(settings) / "resolve_summary.json",
                      json.dumps(figures, indent=2, default=str))
    record_full_run(settings)  # incremental runs are valid under this configuration
    return _summary(figures)


def _run(engine: Engine, settings: Settings, timer: PhaseTimer,
         trigger: str | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    artefacts = artefacts_dir(settings)
    started_at = utc_now()
    with timer.phase("standardise"):
        state = read_state(settings)
        # every batch committed before reading counts as seen (an incremental run skips it),
        # those of channels without identity fields or without accepted rows included
        committed = {b: ch for b, ch in committed_batches(settings).items()
                     if ch in settings.channels}
        load = load_source_rows(engine, settings, batches=committed)  # log read once
        standardise_rows(engine, settings)
        collapse_records(engine, settings)
    figures["rows_in"] = load.rows_per_channel
    figures["channels_without_data"] = load.channels_without_data
    figures["missing_columns"] = load.missing_columns
    with timer.phase("link"):
        figures["identifier_classes"] = classify_identifiers(engine, settings)
        figures["steward_shared_identifiers"] = steward.apply_shared_identifiers(
            engine, state.overrides)
        build_match_records(engine, settings)
        build_rule_links(engine)
        create_splink_input(engine, "match_records", "splink_input")
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
        clustered = cluster(engine, settings.identity.match_threshold, state.overrides)
        figures.update(clustered.figures)
    with timer.phase("ids"):
        if state.clusters is not None:
            engine.from_arrow("previous_clusters", state.clusters)
        assignment = stable_ids(engine, clustered, state, state.previous_active(),
                                has_previous=state.clusters is not None)
        figures["ids"] = id_figures(assignment)
    with timer.phase("golden"):
        engine.create_table("customer_records", """
            select m.*, c.customer_id from match_records m
            join record_customers c on c.record_key = m.record_key""")
        engine.create_table("customer_rows", """
            select r.*, c.customer_id from row_records r
            join record_customers c on c.record_key = r.record_key""")
        build_golden_profiles(engine, settings)
        figures.update(_counts(engine))
    run = RunRecord(run_id=new_run_id(started_at), mode="full", started_at=started_at,
                    batches={**committed, **load.batches_read}, figures=_run_figures(figures),
                    overrides_applied=clustered.overrides_applied,
                    counts={"source_records": figures["rows_total"],
                            "customers": figures["customers"]}, trigger=trigger)
    figures["run_id"] = run.run_id
    with timer.phase("write"):
        write_tables(settings, _outputs(engine, settings.identity.match_threshold),
                     persist=lambda con: persist_run(con, state, run, assignment,
                                                     replace_batches=True))
    return figures


def create_splink_input(engine: Engine, match_table: str, name: str) -> None:
    """Working table `name`: what Splink sees of the usable records of `match_table` (steward-
    shared emails and phones hidden; working table `steward_shared` must exist)."""
    engine.create_table(name, f"""
        select {model.SPLINK_INPUT_COLUMNS}
        from ({steward.hide_shared_sql(match_table)}) as m
        where usable and (first_key is not null or last_key is not null
                          or birth_date is not null or email is not null or phone is not null)
    """)


@dataclass
class Clustered:
    """The outcome of guarded clustering, kept for stable ids and their evidence."""

    keys: list[str]  # record keys, sorted
    roots: list[int]  # cluster root of each record
    edges: list[Edge]  # every link considered, must-links first, strongest first
    refusals: list[Refusal]
    overrides: dict[str, dict[str, Any]]  # override id -> override row
    overrides_applied: list[str]
    figures: dict[str, Any]


def _run_figures(figures: dict[str, Any]) -> dict[str, Any]:
    keep = ("rows_in", "model", "ids", "customers", "records", "rows_total", "rows_unresolved",
            "refused_by_guard", "overrides")
    return {k: figures[k] for k in keep if k in figures}


@paused_gc()
def cluster(engine: Engine, threshold: float, overrides: list[dict[str, Any]],
            facts_table: pa.Table | None = None, links: pa.Table | None = None) -> Clustered:
    """Guarded clustering in Python over the usable `match_records` and the links in
    `rule_links` and `splink_links` (or the given `facts_table` and `links`, as the incremental
    run passes them); working table `refusals`. Steward must-links and cannot-links whose
    records are in `row_records` are applied."""
    if facts_table is None:
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
    if links is None:
        links = engine.to_arrow(f"""
            select record_l, record_r, link_type, weight from (
                select record_l, record_r, link_type,
                       cast(null as double) as weight from rule_links
                union all
                select record_l, record_r,
                       case when match_probability >= ? then 'splink' else 'splink_attach' end,
                       match_weight from splink_links) as e
            order by {edge_order_sql()}""", [threshold])
    edges = [Edge(index[left], index[right], kind, weight)
             for left, right, kind, weight in zip(
                 links.column("record_l").to_pylist(), links.column("record_r").to_pylist(),
                 links.column("link_type").to_pylist(), links.column("weight").to_pylist(),
                 strict=True)
             if left in index and right in index]
    pairs, missing = steward.record_pairs(engine, overrides)
    must = [Edge(index[left], index[right], MUST_LINK, None, oid)
            for kind, left, right, oid in pairs
            if kind == "must_link" and left in index and right in index]
    cannot = [(index[left], index[right], oid) for kind, left, right, oid in pairs
              if kind == "cannot_link" and left in index and right in index]
    # a cannot-link whose two rows are one identity record (same data, same channel) cannot
    # be honoured; say so rather than pretend
    same_record = sorted(oid for kind, left, right, oid in pairs
                         if kind == "cannot_link" and left == right)
    applied = sorted({e.override_id for e in must if e.override_id}
                     | {oid for _, _, oid in cannot}
                     | {o["override_id"] for o in overrides
                        if o["kind"] == "shared_identifier"})
    roots, refusals = cluster_records(
        facts, [e for e in edges if e.link_type != "splink_attach"],
        attach_edges=[e for e in edges if e.link_type == "splink_attach"],
        must_edges=must, cannot_links=cannot)
    engine.from_arrow("steward_links", pa.table({
        "record_l": pa.array([keys[e.left] for e in must], pa.string()),
        "record_r": pa.array([keys[e.right] for e in must], pa.string()),
        "link_type": pa.array([MUST_LINK] * len(must), pa.string())}))
    engine.from_arrow("refusals", pa.table({
        "record_l": pa.array([keys[r.edge.left] for r in refusals], pa.string()),
        "record_r": pa.array([keys[r.edge.right] for r in refusals], pa.string()),
        "link_type": pa.array([r.edge.link_type for r in refusals], pa.string()),
        "refused_by": pa.array([r.guard for r in refusals], pa.string()),
    }))
    by_guard = Counter(r.guard for r in refusals)
    by_rule = Counter(e.link_type for e in edges)
    figures = {"links_by_rule": {k: v for k, v in by_rule.items()
                                 if k not in ("splink", "splink_attach")},
               "links_by_model": by_rule.get("splink", 0),
               "attach_only_links": by_rule.get("splink_attach", 0),
               "refused_by_guard": dict(by_guard),
               "overrides": {"active": len(overrides), "applied": len(applied),
                             "records_not_in_run": sorted(missing),
                             "cannot_link_within_one_record": same_record}}
    return Clustered(keys, roots, must + edges, refusals,
                     {o["override_id"]: o for o in overrides}, applied, figures)


def edge_order_sql() -> str:
    """Links strongest first: rules by specificity, then Splink by falling match weight."""
    rule_rank = " ".join(f"when '{k}' then {i}" for i, k in enumerate(RULE_ORDER_ALL))
    return (f"case link_type {rule_rank} else 100 end, weight desc nulls last, "
            "record_l, record_r")


def stable_ids(engine: Engine, clustered: Clustered, state: PreviousState,
               previous: set[str], has_previous: bool) -> Assignment:
    """Customer ids for the clusters, carried over from `previous_clusters` (the previous
    run's source record -> customer id, a working table) by overlap of source records; working
    table `record_customers` (record_key, customer_id). `previous` are the ids in scope."""
    keys, roots = clustered.keys, clustered.roots
    label: dict[int, str] = {}
    for i, root in enumerate(roots):  # keys are sorted: the first member is the smallest
        label.setdefault(root, keys[i])
    record_cluster = [label[r] for r in roots]
    engine.from_arrow("record_clusters", pa.table({
        "record_key": pa.array(keys, pa.string()),
        "cluster": pa.array(record_cluster, pa.string())}))
    overlaps: list[Overlap] = []
    if has_previous:
        found = engine.to_arrow("""
            select rc.cluster, p.customer_id as previous, count(*) as n
            from row_records r
            join record_clusters rc on rc.record_key = r.record_key
            join previous_clusters p
              on p.source = r.source and p.source_record_id = r.source_record_id
            group by rc.cluster, p.customer_id""")
        overlaps = [Overlap(c, p, n) for c, p, n in zip(
            *(found.column(x).to_pylist() for x in ("cluster", "previous", "n")), strict=True)]
    assignment = assign_ids(set(label.values()), overlaps, previous, state.issue_order,
                            state.taken)
    if assignment.changes:
        origin = _record_origins(engine, {c.cluster for c in assignment.changes}
                                 | {c.kept_cluster for c in assignment.changes
                                    if c.kept_cluster})
        attach_evidence(assignment.changes, keys, record_cluster,
                        [origin.get(k) for k in keys], clustered.edges, clustered.refusals,
                        clustered.overrides, assignment.ids)
        _shared_identifier_splits(engine, assignment, clustered.overrides)
    engine.from_arrow("record_customers", pa.table({
        "record_key": pa.array(keys, pa.string()),
        "customer_id": pa.array([assignment.ids[c] for c in record_cluster], pa.string())}))
    return assignment


def _shared_identifier_splits(engine: Engine, assignment: Assignment,
                              overrides: dict[str, dict[str, Any]]) -> None:
    """A split whose two parts both use a steward-shared identifier value was caused by that
    override (the value no longer links them): log it as `override_split`."""
    splits = [c for c in assignment.changes if c.event == "split" and c.kept_cluster]
    if not splits or not any(o["kind"] == "shared_identifier" for o in overrides.values()):
        return
    found = engine.to_arrow("""
        select distinct rc.cluster, u.kind, u.value
        from identifier_uses u
        join steward_shared s on s.kind = u.kind and s.value = u.value
        join record_clusters rc on rc.record_key = u.record_key""")
    uses: dict[str, set[tuple[str, str]]] = {}
    for cluster, kind, value in zip(*(found.column(c).to_pylist()
                                      for c in ("cluster", "kind", "value")), strict=True):
        uses.setdefault(cluster, set()).add((kind, value))
    by_value = {(o["identifier_kind"], o["identifier_value"]): oid
                for oid, o in overrides.items() if o["kind"] == "shared_identifier"}
    for change in splits:
        common = uses.get(change.cluster, set()) & uses.get(change.kept_cluster or "", set())
        if common:
            change.event = "override_split"
            change.evidence["overrides"] = [
                {"override_id": by_value[v], "kind": "shared_identifier",
                 "author": overrides[by_value[v]]["author"],
                 "reason": overrides[by_value[v]]["reason"]} for v in sorted(common)]


def _record_origins(engine: Engine, clusters: set[str]) -> dict[str, str]:
    """The previous customer of each record in `clusters` (the one most of its rows had)."""
    engine.from_arrow("changed_clusters", pa.table({
        "cluster": pa.array(sorted(clusters), pa.string())}))
    found = engine.to_arrow("""
        select record_key, previous from (
            select r.record_key, p.customer_id as previous,
                   row_number() over (partition by r.record_key
                                      order by count(*) desc, p.customer_id) as rn
            from row_records r
            join record_clusters rc on rc.record_key = r.record_key
            join changed_clusters c on c.cluster = rc.cluster
            join previous_clusters p
              on p.source = r.source and p.source_record_id = r.source_record_id
            group by r.record_key, p.customer_id) as t
        where rn = 1""")
    return dict(zip(found.column("record_key").to_pylist(),
                    found.column("previous").to_pylist(), strict=True))


def id_figures(assignment: Assignment) -> dict[str, int]:
    events = Counter(c.event for c in assignment.changes)
    return {"kept": assignment.kept,
            "created": sum(1 for _, origin in assignment.issued if origin == "new"),
            "split_off": sum(1 for _, origin in assignment.issued if origin == "split"),
            "merged_away": len(assignment.merged), "retired": len(assignment.retired),
            **{f"events_{k}": v for k, v in sorted(events.items())}}


def payload_hash_sql(table: str) -> str:
    """Each record of `table` (standardised, before junk removal) with a fingerprint of its
    identity payload and channel: how an incremental run finds the record a new row belongs
    to."""
    parts = ", ".join(f"coalesce(cast({c} as varchar), chr(0))" for c in ("source", *PAYLOAD))
    return f"select record_key, md5(concat_ws(chr(31), {parts})) as payload_hash from {table}"


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
        "identity_records": engine.to_arrow(f"""
            select m.record_key, m.source, c.customer_id,
                   case when c.customer_id is null then 'unresolved' else 'resolved' end
                     as status,
                   m.n_rows, m.first_seen_at, m.last_seen_at, m.first_name, m.last_name,
                   m.first_key, m.first_canon, m.last_key, m.name_swapped, m.birth_date,
                   m.gender, m.email, m.phone, m.loyalty_id, m.login_id, m.device_id,
                   m.address, m.address_key, m.city, m.city_key, m.postcode, m.country,
                   m.name_only, h.payload_hash
            from match_records m left join record_customers c on c.record_key = m.record_key
            left join ({payload_hash_sql("records")}) as h on h.record_key = m.record_key
            order by m.record_key"""),
        "identity_links": engine.to_arrow("""
            with links as (
                select record_l, record_r, link_type, cast(null as double) as match_weight,
                       cast(1.0 as double) as match_probability from rule_links
                union all
                select record_l, record_r,
                       case when match_probability >= ? then 'splink' else 'splink_attach' end,
                       match_weight, match_probability
                from splink_links
                union all
                select record_l, record_r, link_type, cast(null as double),
                       cast(1.0 as double) from steward_links)
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
        "identity_clusters": engine.to_arrow(f"""
            select r.source, r.source_record_id, c.customer_id, r.record_key, r.event_at,
                   {", ".join(f"r.{c}" for c in CONSENTS)}
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
    ids = f.get("ids")
    if ids:
        summary.add("customer ids kept / new / split off",
                    f"{ids['kept']:,} / {ids['created']:,} / {ids['split_off']:,}")
        summary.add("merges / splits logged",
                    f"{ids.get('events_merge', 0) + ids.get('events_override_merge', 0):,} / "
                    f"{ids.get('events_split', 0) + ids.get('events_override_split', 0):,}")
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
    overrides = f.get("overrides") or {}
    if overrides.get("active"):
        summary.add("steward overrides active / applied",
                    f"{overrides['active']} / {overrides['applied']}")
        if overrides.get("records_not_in_run"):
            summary.notes.append("overrides whose records are not in this run (not ingested or "
                                 "unresolved): " + ", ".join(overrides["records_not_in_run"]))
        if overrides.get("cannot_link_within_one_record"):
            summary.notes.append(
                "cannot-link overrides between two rows with identical identity data in one "
                "channel (one identity record) cannot be honoured: "
                + ", ".join(overrides["cannot_link_within_one_record"]))
    if f["refused_by_guard"]:
        summary.notes.append("guards: " + ", ".join(
            f"{k} refused {v}" for k, v in sorted(f["refused_by_guard"].items())))
    return summary
