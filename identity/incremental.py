"""`cdp resolve --incremental`: link only newly ingested batches to the existing customers.

What is new: every committed lake batch (load log) of an identity channel that is not in
`identity.resolved_batches` (what the current identity tables reflect), plus steward overrides
added or removed since the last run. Nothing new: nothing is written.

1. **standardise** the new batches' rows exactly as a full run does; a row whose identity data
   equals an existing record's (same channel, same payload fingerprint) joins that record; a
   row that was resolved before (re-delivered) leaves its old record.
2. **link**: identifier values carried by new records are re-classified over *all* records
   that use them (a class only ever goes up: personal -> shared -> junk), and their rule links
   are rebuilt; Splink scores new records against existing ones with the saved model
   (`predict_between`) and against each other (`predict_within`), after registering
   term-frequency tables computed over existing + new records. Existing records that share no
   blocking key with a new record are not read at all.
3. **cluster**: the customers touched (those of every existing record linked to a new one by a
   rule or by Splink, that uses a value whose stored rule links no longer hold, that lost a
   re-delivered row, or that a changed override names) and their neighbours one stored link
   away are re-clustered from their stored links plus the new ones, with the same guards,
   override handling and link order as a full run; stable ids map the result to their previous
   ids, so merges and splits are logged exactly as in a full run. Customers whose records only
   received rows with identical identity data keep their id and are only refreshed.
4. **golden** profiles are recomputed for those customers only; **write** deletes and inserts
   only the rows that differ from the stored ones, with the id registry, history and run log,
   in one transaction.

Where it can differ from a full run on the same data (`identity/README.md` lists these):
the model is not retrained and the blocking rules are the saved ones; Splink scores between two
existing records are not recomputed (term frequencies or a value turned junk would shift them);
first/last name swaps are learnt from the new batch only; new records are linked to the
existing users of an unchanged value rather than rebuilding its star; a new row whose identity
data equals an existing record's keeps that record's key; effects further than one stored link
from a touched customer are not re-evaluated; a re-delivered row that was unresolved stays
counted in its old record.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.lake import load_log_dir, raw_dir
from cdp.summary import StepSummary
from identity import model
from identity import overrides as steward
from identity.cluster import MUST_LINK
from identity.engines import Engine, get_engine
from identity.golden import build_golden_profiles
from identity.links import (
    build_match_records,
    build_rule_links,
    classify_identifiers,
    identifier_kinds,
)
from identity.records import (
    CONSENTS,
    IDENTIFIERS,
    PAYLOAD,
    collapse_records,
    load_source_rows,
    standardise_rows,
)
from identity.resolve import (
    PhaseTimer,
    cluster,
    create_splink_input,
    edge_order_sql,
    id_figures,
    payload_hash_sql,
    stable_ids,
)
from identity.state import PreviousState, RunRecord, new_run_id, persist_run, read_state, utc_now
from identity.store import (
    SCHEMA,
    artefacts_dir,
    open_warehouse_if_any,
    transaction,
    write_text_atomic,
)

# The columns of the `records` working table (records.collapse_records), all stored in
# identity.identity_records.
RECORD_COLUMNS = ("record_key", "source", "n_rows", "first_seen_at", "last_seen_at", *PAYLOAD,
                  "address", "city", "name_swapped", "first_key", "first_canon", "last_key")
# The columns of `match_records` (links.build_match_records).
MATCH_COLUMNS = ("record_key", "source", "n_rows", "first_seen_at", "last_seen_at",
                 "first_name", "last_name", "first_key", "first_canon", "last_key",
                 "birth_date", "gender", "address", "address_key", "city", "city_key",
                 "postcode", "country", "name_swapped", *IDENTIFIERS, "usable", "name_only")
ROW_COLUMNS = ("source", "source_record_id", "event_at", *CONSENTS, "record_key")
# Splink input column -> identity_records column (for finding blocking partners)
SPLINK_TO_RECORD = {"first_name": "first_key", "first_canon": "first_canon",
                    "last_name": "last_key", "birth_date": "birth_date", "email": "email",
                    "phone": "phone", "postcode": "postcode", "city": "city_key",
                    "address": "address_key"}
# New rows up to which the incremental run's working tables count as small (see _run).
SMALL_BATCH_ROWS = 100_000
CLASS_RANK = {"personal": 0, "shared": 1, "junk": 2}


def _cols(columns: tuple[str, ...] | list[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


class Warehouse:
    """Read-only lookups in the warehouse, with small Arrow tables of this run as inputs."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def arrow(self, sql: str, params: list[Any] | None = None, **inputs: pa.Table) -> pa.Table:
        for name, table in inputs.items():
            self.con.register(name, table)
        try:
            return self.con.sql(sql, params=params or None).to_arrow_table()
        finally:
            for name in inputs:
                self.con.unregister(name)


@dataclass
class Plan:
    """What this incremental run has to take in."""

    batches: dict[str, str]  # new batch id -> channel
    new_overrides: list[dict[str, Any]] = field(default_factory=list)
    removed_overrides: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.batches or self.new_overrides or self.removed_overrides)


def plan(settings: Settings, state: PreviousState) -> Plan:
    """New batches (committed, of identity channels, not yet resolved) and changed overrides.
    Only the load-log entries of batches not seen before are read (one file per batch)."""
    identity_channels = {n for n, c in settings.channels.items() if c.identity}
    batches: dict[str, str] = {}
    for path in sorted(load_log_dir(settings).glob("*.parquet")):
        if path.stem in state.resolved_batches:
            continue
        try:
            # (ParquetFile: read_table would load pyarrow.dataset to read one small file)
            entry = pq.ParquetFile(path).read(columns=["batch_id", "channel", "status"]
                                              ).to_pylist()
        except (pa.ArrowException, OSError, KeyError):
            raise CdpError(f"load-log entry {path} is unreadable: restore it, or delete it and "
                           "that batch's raw/quarantine files to reload it") from None
        for row in entry:
            if row["status"] == "loaded" and row["channel"] in identity_channels:
                batches[row["batch_id"]] = row["channel"]
    applied = set(json.loads((state.last_run or {}).get("overrides_applied") or "[]"))
    new = [o for o in state.overrides if o["override_id"] not in applied]
    removed = [o for o in state.removed_overrides if o["override_id"] in applied]
    return Plan(batches, new, removed)


def resolve_incremental(settings: Settings, trigger: str | None = None) -> StepSummary:
    """Link the newly ingested batches (and apply changed overrides) without recomputing
    everything; see the module docstring. Needs a previous run and its saved model."""
    started = time.perf_counter()
    state = read_state(settings, with_clusters=False)
    if state.last_run is None:
        raise CdpError("no previous `cdp resolve` to add to: run a full `cdp resolve` first")
    model_file = artefacts_dir(settings) / model.MODEL_FILE
    if not model_file.exists():
        raise CdpError(f"no saved Splink model at {model_file}: run a full `cdp resolve`")
    work = plan(settings, state)
    if work.empty:
        summary = StepSummary(title="resolve (incremental)")
        summary.add("new batches", 0)
        summary.notes.append(f"up to date: nothing ingested since run {state.last_run['run_id']}"
                             "; nothing written")
        summary.figures = {"up_to_date": True, "new_batches": 0}
        return summary
    progress = Progress(SpinnerColumn(), TextColumn("resolve --incremental: {task.description}"),
                        TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty())
    timer = PhaseTimer(progress=progress)
    engine = get_engine(settings)
    con = open_warehouse_if_any(settings)
    if con is None or "payload_hash" not in {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? "
            "and table_name = 'identity_records'", [SCHEMA]).fetchall()}:
        if con is not None:
            con.close()
        engine.close()
        raise CdpError("the identity tables were written by an older version: run a full "
                       "`cdp resolve` once before incremental runs")
    try:
        with progress:
            figures = _run(engine, Warehouse(con), settings, timer, state, work,
                           model_file.read_text(encoding="utf-8"), trigger)
    finally:
        con.close()
        engine.close()
    figures["seconds"] = {k: round(v, 2) for k, v in timer.seconds.items()}
    figures["seconds_total"] = round(time.perf_counter() - started, 2)
    write_text_atomic(artefacts_dir(settings) / "resolve_incremental_summary.json",
                      json.dumps(figures, indent=2, default=str))
    return _summary(figures)


def _run(engine: Engine, wh: Warehouse, settings: Settings, timer: PhaseTimer,
         state: PreviousState, work: Plan, model_json: str,
         trigger: str | None = None) -> dict[str, Any]:
    started_at = utc_now()
    threshold = settings.identity.match_threshold
    figures: dict[str, Any] = {"new_batches": len(work.batches),
                               "overrides_changed": [o["override_id"] for o in
                                                     work.new_overrides + work.removed_overrides]}
    with timer.phase("standardise"):
        load = _load_new_rows(engine, wh, settings, work)
        figures["rows_in"] = load
        if engine.name == "duckdb" and sum(load.values()) < SMALL_BATCH_ROWS:
            # every working table from here on is small (new records, the customers they
            # touch): one DuckDB thread is faster than scheduling two (3.9 s -> 3.5 s at 1M)
            engine.execute("set threads = 1")
        deleted = _map_new_rows(engine, wh)
    with timer.phase("link"):
        _reclassify(engine, wh, settings, work, state.overrides, deleted)
        _new_rule_links(engine, settings)
    with timer.phase("predict"):
        figures["model"] = _predict_new(engine, wh, settings, model_json, threshold)
    with timer.phase("cluster"):
        touched = _touched_customers(engine, wh, settings, work)
        figures.update(_gather(engine, wh, touched, deleted, threshold))
        facts = engine.to_arrow("""
            select record_key, first_key, last_key, birth_date, loyalty_id, login_id, name_only
            from r_match where usable and record_key in (select record_key from cluster_keys)
            order by record_key""")
        links = engine.to_arrow(f"select * from r_links order by {edge_order_sql()}")
        clustered = cluster(engine, threshold, state.overrides, facts, links)
        figures.update(clustered.figures)
    with timer.phase("ids"):
        assignment = stable_ids(engine, clustered, state, set(touched.recluster),
                                has_previous=True)
        # customers that only gained rows keep their records and id
        engine.create_table("record_customers", """
            select record_key, customer_id from record_customers
            union all
            select record_key, customer_id from r_existing
            where not recluster and record_key in (select record_key from r_match)""")
        figures["ids"] = id_figures(assignment)
        figures["attached_records"] = int(engine.scalar("""
            select count(*) from new_records n
            join record_customers c on c.record_key = n.record_key
            where c.customer_id in (select customer_id from previous_clusters)""") or 0)
        figures["customers_touched"] = len(touched.recluster)
    with timer.phase("golden"):
        engine.create_table("customer_records", """
            select m.*, c.customer_id from r_match m
            join record_customers c on c.record_key = m.record_key""")
        engine.create_table("customer_rows", f"""
            select r.*, c.customer_id from (
                select * from row_records
                union all
                select {_cols(ROW_COLUMNS)} from r_rows_old where not recluster) as r
            join record_customers c on c.record_key = r.record_key""")
        build_golden_profiles(engine, settings)
    run = RunRecord(run_id=new_run_id(started_at), mode="incremental", started_at=started_at,
                    batches=work.batches, overrides_applied=clustered.overrides_applied,
                    counts={"source_records": sum(load.values()),
                            "attached": figures["attached_records"]}, trigger=trigger)
    figures["run_id"] = run.run_id
    with timer.phase("write"):
        outputs = _outputs(engine, engine.columns("r_golden_old"))
        wh.con.close()  # the write needs the warehouse file to itself
        run.figures = {k: figures.get(k) for k in (
            "rows_in", "ids", "attached_records", "customers_touched", "customers_refreshed",
            "records_reclustered", "new_records", "model")}
        with transaction(settings) as con:
            figures["rows_written"] = _apply(con, outputs)
            run.counts["customers"] = con.execute(
                f"select count(*) from {SCHEMA}.golden_profiles").fetchall()[0][0]
            persist_run(con, state, run, assignment, replace_batches=False)
        figures["customers"] = run.counts["customers"]
    return figures


# --- standardise ---------------------------------------------------------------------------


def _load_new_rows(engine: Engine, wh: Warehouse, settings: Settings,
                   work: Plan) -> dict[str, int]:
    """Working tables `new_records_raw` and `new_row_records` (the new batches, standardised
    and collapsed by the full run's own functions); returns rows per channel."""
    with_rows = {b for b, ch in work.batches.items()
                 if any(raw_dir(settings, ch).glob(f"*/{b}.parquet"))}
    if with_rows:  # (a batch whose every row was quarantined has no raw file)
        load = load_source_rows(engine, settings, batches=with_rows)
        standardise_rows(engine, settings)
        collapse_records(engine, settings)
        rows = load.rows_per_channel
    else:  # only overrides changed: empty tables of the right shape
        engine.from_arrow("records", wh.arrow(
            f"select {_cols(RECORD_COLUMNS)} from {SCHEMA}.identity_records limit 0"))
        engine.from_arrow("row_records", wh.arrow(
            f"select {_cols(ROW_COLUMNS)} from {SCHEMA}.identity_clusters limit 0"))
        rows = {}
    engine.create_table("new_records_raw", f"""
        select r.*, h.payload_hash from records r
        join ({payload_hash_sql("records")}) as h on h.record_key = r.record_key""")
    engine.create_table("new_row_records", "select * from row_records")
    engine.drop_table("records")
    engine.drop_table("row_records")
    return rows


def _map_new_rows(engine: Engine, wh: Warehouse) -> set[str]:
    """Working tables `key_map` (new record key -> record key it is stored under), `new_rows`
    (new rows with that key), `new_records` (records that did not exist, with their final key),
    `redelivered` (rows resolved before, with their previous record and customer) and
    `matched_unresolved` (existing unresolved records that received rows). Returns the existing
    record keys left without rows."""
    hashes = engine.to_arrow("select record_key, payload_hash from new_records_raw")
    matched = wh.arrow(f"""
        select n.record_key as new_key, e.record_key as existing_key, e.status
        from hashes n join {SCHEMA}.identity_records e on e.payload_hash = n.payload_hash""",
                       hashes=hashes)
    clash = set(wh.arrow(f"""
        select e.record_key from {SCHEMA}.identity_records e
        join hashes n on n.record_key = e.record_key""", hashes=hashes).column(
        "record_key").to_pylist())
    found = {n: (e, s) for n, e, s in zip(*(matched.column(c).to_pylist()
                                            for c in ("new_key", "existing_key", "status")),
                                          strict=True)}
    new_keys, final_keys, is_matched = [], [], []
    for key, digest in zip(hashes.column("record_key").to_pylist(),
                           hashes.column("payload_hash").to_pylist(), strict=True):
        new_keys.append(key)
        if key in found:
            final_keys.append(found[key][0])
            is_matched.append(True)
        else:
            # the key names a record that still exists with other data (its row changed):
            # keep both apart
            final_keys.append(key if key not in clash else f"{key}~{digest[:8]}")
            is_matched.append(False)
    engine.from_arrow("key_map", pa.table({
        "new_key": pa.array(new_keys, pa.string()),
        "record_key": pa.array(final_keys, pa.string()),
        "matched": pa.array(is_matched, pa.bool_())}))
    engine.create_table("new_rows", f"""
        select {_cols(ROW_COLUMNS[:-1], "r")}, k.record_key, k.matched
        from new_row_records r join key_map k on k.new_key = r.record_key""")
    engine.create_table("new_records", f"""
        select k.record_key, {", ".join(f"r.{c}" for c in RECORD_COLUMNS[1:])}, r.payload_hash
        from new_records_raw r join key_map k on k.new_key = r.record_key
        where not k.matched""")
    rows = engine.to_arrow("select source, source_record_id, record_key from new_rows")
    engine.from_arrow("redelivered", wh.arrow(f"""
        select c.source, c.source_record_id, c.record_key as old_key, c.customer_id,
               n.record_key as new_key
        from {SCHEMA}.identity_clusters c
        join rows n on n.source = c.source and n.source_record_id = c.source_record_id""",
                                              rows=rows))
    status = dict(found.values())  # existing key -> status
    engine.from_arrow("matched_existing", pa.table({
        "record_key": pa.array(sorted(status), pa.string()),
        "status": pa.array([status[k] for k in sorted(status)], pa.string())}))
    unresolved = sorted(k for k, s in status.items() if s == "unresolved")
    engine.from_arrow("matched_unresolved", wh.arrow(f"""
        select e.* from {SCHEMA}.identity_records e
        join keys k on k.record_key = e.record_key""",
        keys=pa.table({"record_key": pa.array(unresolved, pa.string())})))
    # existing records whose every row was re-delivered into another record
    leaving = engine.to_arrow("""
        select old_key, count(*) as n from redelivered where old_key <> new_key
        group by old_key""")
    if leaving.num_rows == 0:
        return set()
    totals = wh.arrow(f"""
        select c.record_key, count(*) as n from {SCHEMA}.identity_clusters c
        join leaving l on l.old_key = c.record_key group by c.record_key""", leaving=leaving)
    total = dict(zip(totals.column("record_key").to_pylist(), totals.column("n").to_pylist(),
                     strict=True))
    return {k for k, n in zip(leaving.column("old_key").to_pylist(),
                              leaving.column("n").to_pylist(), strict=True)
            if total.get(k, 0) <= n}


# --- link ------------------------------------------------------------------------------------


def _reclassify(engine: Engine, wh: Warehouse, settings: Settings, work: Plan,
                active: list[dict[str, Any]], deleted: set[str]) -> None:
    """Re-classify the identifier values of new records (and of changed shared-identifier
    overrides) over every record that uses them; working tables `v_re` (the values),
    `subset_records` (new records + existing users of those values), `identifier_classes`,
    `shared_members`, `steward_shared`, `v_changed` (values whose stored rule links are
    replaced) and `match_subset` (their match records)."""
    kinds = identifier_kinds(settings)
    parts = [f"select cast('{k}' as varchar) as kind, {k} as value from new_records "
             f"where {k} is not null" for k in kinds]
    found = (engine.to_arrow(" union ".join(parts)) if parts
             else pa.table({"kind": pa.array([], pa.string()),
                            "value": pa.array([], pa.string())}))
    fresh = steward.shared_values(work.removed_overrides)
    # (Spark marks a literal column not-null: the schemas differ only in that)
    values = pa.concat_tables([found, steward.shared_values(work.new_overrides), fresh],
                              promote_options="permissive")
    pairs = sorted(set(zip(values.column("kind").to_pylist(), values.column("value").to_pylist(),
                           strict=True)))
    values = pa.table({"kind": pa.array([p[0] for p in pairs], pa.string()),
                       "value": pa.array([p[1] for p in pairs], pa.string())})
    stored = wh.arrow(f"""
        select i.kind, i.value, i.class, i.people, i.records from {SCHEMA}.identity_identifiers i
        join vals v on v.kind = i.kind and v.value = i.value""", vals=values)
    junk = {(k, v) for k, v, c in zip(*(stored.column(x).to_pylist()
                                       for x in ("kind", "value", "class")), strict=True)
            if c == "junk"}
    fresh_pairs = set(zip(fresh.column("kind").to_pylist(), fresh.column("value").to_pylist(),
                          strict=True))
    keep = [p for p in pairs if p not in junk]  # junk stays junk: nothing to recount
    v_re = pa.table({"kind": pa.array([p[0] for p in keep], pa.string()),
                     "value": pa.array([p[1] for p in keep], pa.string()),
                     "fresh": pa.array([p in fresh_pairs for p in keep], pa.bool_())})
    engine.from_arrow("v_re", v_re)
    engine.from_arrow("stored_classes", stored)
    engine.from_arrow("deleted_records", pa.table({
        "record_key": pa.array(sorted(deleted), pa.string())}))
    joins = " union ".join(
        f"select e.record_key from {SCHEMA}.identity_records e join v on v.kind = '{k}' "
        f"and v.value = e.{k}" for k in kinds)
    carriers = (wh.arrow(f"""
        select {_cols(RECORD_COLUMNS, "e")} from {SCHEMA}.identity_records e
        where e.status = 'resolved' and e.record_key in ({joins})""", v=v_re)
                if kinds and keep else wh.arrow(
        f"select {_cols(RECORD_COLUMNS)} from {SCHEMA}.identity_records limit 0"))
    engine.from_arrow("carriers", carriers)
    engine.create_table("subset_records", f"""
        select {_cols(RECORD_COLUMNS)} from new_records
        union all
        select {_cols(RECORD_COLUMNS)} from carriers
        where record_key not in (select record_key from deleted_records)""")
    engine.create_table("records", "select * from subset_records")
    classify_identifiers(engine, settings)
    rank = "case {0} when 'junk' then 2 when 'shared' then 1 when 'personal' then 0 end"
    engine.create_table("identifier_classes_combined", f"""
        select c.kind, c.value, c.records,
               case when v.fresh then c.people
                    else greatest(c.people, s.people) end as people,
               case greatest({rank.format("c.class")},
                             case when v.fresh then 0 else coalesce({rank.format("s.class")}, 0)
                             end)
                    when 2 then 'junk' when 1 then 'shared' else 'personal' end as class
        from identifier_classes c
        join v_re v on v.kind = c.kind and v.value = c.value
        left join stored_classes s on s.kind = c.kind and s.value = c.value
        union all
        select kind, value, records, people, class from stored_classes where class = 'junk'""")
    engine.create_table("identifier_classes", "select * from identifier_classes_combined")
    engine.drop_table("identifier_classes_combined")
    steward.apply_shared_identifiers(engine, active)
    # values whose stored rule links no longer hold: their class changed, or they are shared
    # (which of their users are one person may change with a new user)
    engine.create_table("v_changed", """
        select v.kind, v.value from v_re v
        join identifier_classes c on c.kind = v.kind and c.value = v.value
        join stored_classes s on s.kind = v.kind and s.value = v.value
        where s.class <> c.class or c.class = 'shared'""")
    build_match_records(engine, settings)
    engine.create_table("match_subset", "select * from match_records")


def _new_rule_links(engine: Engine, settings: Settings) -> None:
    """Working table `new_rule_links`: rule links on the values of new records, built over
    every record that uses them (the star per value a full run builds): all of them for values
    whose stored links are replaced (`v_changed`), else those that reach a new record."""
    build_rule_links(engine)
    parts = [f"""
        select rl.link_type, rl.record_l, rl.record_r from rule_links rl
        join subset_records l on l.record_key = rl.record_l
        join v_re v on v.kind = '{k}' and v.value = l.{k}
        left join v_changed c on c.kind = v.kind and c.value = v.value
        where rl.link_type in ('{k}', '{k}+person')
          and (c.value is not null
               or rl.record_l in (select record_key from new_records)
               or rl.record_r in (select record_key from new_records))"""
             for k in identifier_kinds(settings)]
    engine.create_table("new_rule_links", " union all ".join(parts) if parts else """
        select cast(null as varchar) as link_type, cast(null as varchar) as record_l,
               cast(null as varchar) as record_r where false""")


# --- predict -------------------------------------------------------------------------------


# `l."x" = r."x"`, or `l.`x` = r.`x`` as a model saved on Spark quotes it
_RULE_PART = re.compile(r'^\(?\s*l\.["`](\w+)["`]\s*=\s*r\.["`](\w+)["`]\s*\)?$')


def blocking_columns(settings_json: dict[str, Any]) -> list[list[str]] | None:
    """The Splink columns of each saved blocking rule (`l."x" = r."x" AND ...`), or None when a
    rule is of another shape (then every existing record is a candidate)."""
    rules = []
    for rule in settings_json.get("blocking_rules_to_generate_predictions", []):
        text = rule["blocking_rule"] if isinstance(rule, dict) else str(rule)
        columns = []
        for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
            match = _RULE_PART.match(part.strip())
            if not match or match.group(1) != match.group(2) \
                    or match.group(1) not in SPLINK_TO_RECORD:
                return None
            columns.append(match.group(1))
        rules.append(columns)
    return rules


def _record_expr(column: str) -> str:
    target = SPLINK_TO_RECORD[column]
    return "cast(e.birth_date as varchar)" if target == "birth_date" else f"e.{target}"


def _predict_new(engine: Engine, wh: Warehouse, settings: Settings, model_json: str,
                 threshold: float) -> dict[str, Any]:
    """Working table `new_splink_links`: Splink scores of new records against existing records
    (predict_between) and each other (predict_within) with the saved model."""
    import logging

    from splink import Linker

    create_splink_input(engine, "match_subset", "splink_subset")
    engine.create_table("splink_new", """
        select * from splink_subset
        where unique_id in (select record_key from new_records)""")
    empty = """select cast(null as varchar) as record_l, cast(null as varchar) as record_r,
                      cast(null as double) as match_weight,
                      cast(null as double) as match_probability where false"""
    n_new = int(engine.scalar("select count(*) from splink_new") or 0)
    report: dict[str, Any] = {"new_records": n_new, "candidates": 0, "links": 0}
    if n_new == 0:
        engine.create_table("new_splink_links", empty)
        engine.create_table("match_candidates", "select * from match_subset where false")
        return report
    settings_json = json.loads(model_json)
    new_input = engine.to_arrow("select * from splink_new")
    rules = blocking_columns(settings_json)
    population = ("e.status = 'resolved' and (e.first_key is not null or e.last_key is not null"
                  " or e.birth_date is not null or e.email is not null or e.phone is not null)")
    if rules is None:
        keys_sql = f"select e.record_key from {SCHEMA}.identity_records e where {population}"
    else:
        keys_sql = " union ".join(
            f"""select e.record_key from {SCHEMA}.identity_records e
                join (select distinct {", ".join(cols)} from new_input
                      where {" and ".join(f"{c} is not null" for c in cols)}) n
                  on {" and ".join(f"{_record_expr(c)} = n.{c}" for c in cols)}
                where {population}""" for cols in rules)
    candidates = wh.arrow(f"""
        select {_cols(RECORD_COLUMNS, "e")} from {SCHEMA}.identity_records e
        where e.record_key in ({keys_sql})""", new_input=new_input)
    engine.from_arrow("candidates", candidates)
    engine.create_table("records", f"""
        select {_cols(RECORD_COLUMNS)} from candidates
        where record_key not in (select record_key from match_subset)
          and record_key not in (select record_key from deleted_records)""")
    build_match_records(engine, settings)
    engine.create_table("match_candidates", "select * from match_records")
    engine.create_table("match_partners", f"""
        select {_cols(MATCH_COLUMNS)} from match_subset
        where record_key in (select record_key from candidates)
          and record_key not in (select record_key from new_records)
        union all
        select {_cols(MATCH_COLUMNS)} from match_candidates""")
    create_splink_input(engine, "match_partners", "splink_existing")
    report["candidates"] = int(engine.scalar("select count(*) from splink_existing") or 0)
    db_api = engine.splink_db_api()
    new_sdf = db_api.register("splink_new")
    linker = Linker(new_sdf, settings_json, log_level=logging.ERROR)
    for tf_column in linker._settings_obj._term_frequency_columns:
        _register_tf(engine, wh, linker, db_api, tf_column.unquote().name, population)
    scored = []
    probability = min(threshold, model.ATTACH_THRESHOLD)
    within = linker.inference.predict_within(new_sdf, threshold_match_probability=probability,
                                             warning_mode="never")
    scored.append(within)
    if report["candidates"]:
        existing_sdf = db_api.register("splink_existing")
        scored.append(linker.inference.predict_between(
            new_sdf, existing_sdf, threshold_match_probability=probability,
            warning_mode="never"))
    engine.create_table("new_splink_links", " union all ".join(
        f"""select least(unique_id_l, unique_id_r) as record_l,
                   greatest(unique_id_l, unique_id_r) as record_r,
                   match_weight, match_probability from {p.physical_name}""" for p in scored))
    for p in scored:
        p.drop_table_from_database_and_remove_from_cache()
    report["links"] = int(engine.scalar("select count(*) from new_splink_links") or 0)
    return report


def _register_tf(engine: Engine, wh: Warehouse, linker: Any, db_api: Any, column: str,
                 population: str) -> None:
    """Register the term-frequency table of one Splink column, computed (with Splink's
    formula: share of non-null values) over the existing records and the new ones."""
    record_column = _record_expr(column)
    existing = wh.arrow(f"""
        select {record_column} as value, count(*) as n from {SCHEMA}.identity_records e
        where {population} and {record_column} is not null group by 1""")
    new = engine.to_arrow(f"""
        select {column} as value, count(*) as n from splink_new
        where {column} is not null group by 1""")
    counts: dict[Any, int] = {}
    for table in (existing, new):
        for value, n in zip(table.column("value").to_pylist(), table.column("n").to_pylist(),
                            strict=True):
            counts[value] = counts.get(value, 0) + n
    total = sum(counts.values()) or 1
    values = sorted(counts)
    name = f"tf_lookup_{column}"
    engine.from_arrow(name, pa.table({
        column: pa.array(values, pa.string()),
        f"tf_{column}": pa.array([counts[v] / total for v in values], pa.float64())}))
    linker.table_management.register_term_frequency_lookup(db_api.register(name), column)


# --- cluster -------------------------------------------------------------------------------

# Re-cluster the neighbours of touched customers too (one stored link away): a lone record
# with a weak link may now attach, a refused link may now be accepted.
NEIGHBOURS = True


@dataclass
class Touched:
    recluster: list[str]  # customer ids re-clustered with the new records
    refresh: list[str]  # customer ids that only gained rows on existing records
    neighbours: int = 0


def _touched_customers(engine: Engine, wh: Warehouse, settings: Settings,
                       work: Plan) -> Touched:
    """Customers to re-cluster: those of every existing record linked to a new record (rule or
    Splink), that uses a value whose stored links no longer hold, lost or got a re-delivered row,
    those named by a changed override, and (NEIGHBOURS) their neighbours one stored link away.
    Customers whose existing records only received rows are refreshed, not re-clustered."""
    kinds = identifier_kinds(settings)
    changed = " union ".join(
        f"select c.record_key from carriers c join v_changed v on v.kind = '{k}' "
        f"and v.value = c.{k}" for k in kinds) or "select record_key from carriers where false"
    keys = engine.to_arrow(f"""
        select old_key as record_key from redelivered
        union select new_key from redelivered
        union select record_l from new_splink_links union select record_r from new_splink_links
        union select record_l from new_rule_links union select record_r from new_rule_links
        union {changed}""")
    refs = [ref for o in work.new_overrides + work.removed_overrides
            if o["kind"] in steward.PAIR_KINDS for ref in (o["left_ref"], o["right_ref"])]
    ref_table = pa.table({"source": pa.array([r.partition(":")[0] for r in refs], pa.string()),
                          "source_record_id": pa.array([r.partition(":")[2] for r in refs],
                                                       pa.string())})
    first = wh.arrow(f"""
        select distinct e.customer_id from {SCHEMA}.identity_records e
        join keys k on k.record_key = e.record_key where e.customer_id is not null
        union
        select distinct c.customer_id from {SCHEMA}.identity_clusters c
        join refs r on r.source = c.source and r.source_record_id = c.source_record_id""",
                     keys=keys, refs=ref_table)
    recluster = set(first.column("customer_id").to_pylist())
    neighbours: set[str] = set()
    if NEIGHBOURS and recluster:
        found = wh.arrow(f"""
            with mine as (select e.record_key from {SCHEMA}.identity_records e
                          join first f on f.customer_id = e.customer_id),
                 ends as (select l.record_r as other from {SCHEMA}.identity_links l
                          join mine m on m.record_key = l.record_l
                          union
                          select l.record_l from {SCHEMA}.identity_links l
                          join mine m on m.record_key = l.record_r)
            select distinct e.customer_id from ends
            join {SCHEMA}.identity_records e on e.record_key = ends.other
            where e.customer_id is not null""", first=first)
        neighbours = set(found.column("customer_id").to_pylist()) - recluster
    refresh_keys = engine.to_arrow(
        "select record_key from matched_existing where status = 'resolved'")
    refresh = set(wh.arrow(f"""
        select distinct e.customer_id from {SCHEMA}.identity_records e
        join keys k on k.record_key = e.record_key""", keys=refresh_keys).column(
        "customer_id").to_pylist()) - recluster - neighbours
    return Touched(sorted(recluster | neighbours), sorted(refresh), len(neighbours))


def _gather(engine: Engine, wh: Warehouse, touched: Touched, deleted: set[str],
            threshold: float) -> dict[str, Any]:
    """Working tables for the touched customers and the new records: `r_existing` (their
    stored records), `r_rows_old` (their stored rows), `r_golden_old`, `previous_clusters`
    (rows of the re-clustered customers), `row_records` (every row, new ones included),
    `r_match` (match records with row counts and times recomputed), `cluster_keys` (records
    to re-cluster), `stored_links` and `r_links` (links among them, strongest first)."""
    customers = pa.table({
        "customer_id": pa.array(touched.recluster + touched.refresh, pa.string()),
        "recluster": pa.array([True] * len(touched.recluster) + [False] * len(touched.refresh),
                              pa.bool_())})
    engine.from_arrow("r_existing", wh.arrow(f"""
        select e.*, c.recluster from {SCHEMA}.identity_records e
        join customers c on c.customer_id = e.customer_id""", customers=customers))
    # rows: all of the re-clustered customers'; of the others only those that carry consent
    # (all their golden profile needs besides records; their rows do not change)
    consent = " or ".join(f"c.{c} is not null" for c in CONSENTS)
    engine.from_arrow("r_rows_old", wh.arrow(f"""
        select {_cols(CLUSTER_OUTPUT, "c")}, t.recluster from {SCHEMA}.identity_clusters c
        join customers t on t.customer_id = c.customer_id
        where t.recluster or {consent}""", customers=customers))
    engine.from_arrow("r_golden_old", wh.arrow(f"""
        select g.* from {SCHEMA}.golden_profiles g
        join customers c on c.customer_id = g.customer_id""", customers=customers))
    keys = engine.to_arrow("select record_key from r_existing where recluster")
    engine.from_arrow("stored_links", wh.arrow(f"""
        select l.* from {SCHEMA}.identity_links l join keys k on k.record_key = l.record_l
        union
        select l.* from {SCHEMA}.identity_links l join keys k on k.record_key = l.record_r
        """, keys=keys))
    engine.create_table("previous_clusters", """
        select source, source_record_id, customer_id from r_rows_old where recluster""")
    # one match record per record: re-classified (match_subset) before blocking partners
    # (match_candidates) before stored ones (r_existing)
    engine.create_table("r_match_source", """
        select record_key, min(priority) as priority from (
            select record_key, 1 as priority from match_subset where usable
            union all select record_key, 2 from match_candidates
            union all select record_key, 3 from r_existing) as m
        where exists (select 1 from new_records n where n.record_key = m.record_key)
           or exists (select 1 from r_existing e where e.record_key = m.record_key)
        group by record_key""")
    engine.create_table("r_match_base", f"""
        select {_cols(MATCH_COLUMNS, "m")} from match_subset m
        join r_match_source k on k.record_key = m.record_key and k.priority = 1
        union all
        select {_cols(MATCH_COLUMNS, "m")} from match_candidates m
        join r_match_source k on k.record_key = m.record_key and k.priority = 2
        union all
        select {_cols(MATCH_COLUMNS[:-2], "m")}, true as usable, m.name_only from r_existing m
        join r_match_source k on k.record_key = m.record_key and k.priority = 3""")
    engine.create_table("row_records", f"""
        select {_cols(ROW_COLUMNS, "o")} from r_rows_old o
        where o.recluster
          and not exists (select 1 from new_rows n where n.source = o.source
                                                   and n.source_record_id = o.source_record_id)
        union all
        select {_cols(ROW_COLUMNS, "n")} from new_rows n
        where exists (select 1 from r_match_base m where m.record_key = n.record_key)""")
    # row counts and times: from all rows for re-clustered and new records; stored ones plus
    # the new rows for records of customers that are only refreshed
    # (least / greatest skip nulls, in DuckDB as in Spark)
    stats = {"n_rows": "coalesce(e.n_rows, 0) + coalesce(s.n_rows, 0)",
             "first_seen_at": "least(e.first_seen_at, s.first_seen_at)",
             "last_seen_at": "greatest(e.last_seen_at, s.last_seen_at)"}
    engine.create_table("r_match", f"""
        select {", ".join(f"{stats[c]} as {c}" if c in stats else f"m.{c}"
                          for c in MATCH_COLUMNS)}
        from r_match_base m
        left join (select record_key, count(*) as n_rows, min(event_at) as first_seen_at,
                          max(event_at) as last_seen_at
                   from row_records group by record_key) s on s.record_key = m.record_key
        left join r_existing e on e.record_key = m.record_key and not e.recluster
        where (s.record_key is not null or e.record_key is not null)
          and not exists (select 1 from deleted_records d where d.record_key = m.record_key)
        """)
    engine.create_table("cluster_keys", """
        select m.record_key from r_match m join new_records n on n.record_key = m.record_key
        union all
        select m.record_key from r_match m
        join r_existing e on e.record_key = m.record_key and e.recluster""")
    # stored rule links on values whose links no longer hold are replaced by rebuilt ones
    engine.create_table("dropped_links", " union all ".join(f"""
        select s.record_l, s.record_r, s.link_type from stored_links s
        join subset_records l on l.record_key = s.record_l
        join v_changed v on v.kind = '{k}' and v.value = l.{k}
        where s.link_type in ('{k}', '{k}+person')""" for k in IDENTIFIERS))
    engine.create_table("r_links", f"""
        select record_l, record_r,
               case when link_type in ('splink', 'splink_attach') then
                        case when match_probability >= ? then 'splink' else 'splink_attach' end
                    else link_type end as link_type,
               match_weight as weight, match_probability
        from stored_links s
        join cluster_keys kl on kl.record_key = s.record_l
        join cluster_keys kr on kr.record_key = s.record_r
        where link_type <> '{MUST_LINK}'
          and not exists (select 1 from dropped_links d where d.record_l = s.record_l
                          and d.record_r = s.record_r and d.link_type = s.link_type)
        union all
        select record_l, record_r, link_type, cast(null as double), cast(1.0 as double)
        from new_rule_links
        union all
        select record_l, record_r,
               case when match_probability >= ? then 'splink' else 'splink_attach' end,
               match_weight, match_probability
        from new_splink_links""", [threshold, threshold])
    return {"records_reclustered": int(engine.scalar("select count(*) from cluster_keys") or 0),
            "new_records": int(engine.scalar("select count(*) from new_records") or 0),
            "records_deleted": len(deleted), "customers_refreshed": len(touched.refresh),
            "neighbours_reclustered": touched.neighbours}


# --- write ---------------------------------------------------------------------------------

RECORD_OUTPUT = ("record_key", "source", "customer_id", "status", "n_rows", "first_seen_at",
                 "last_seen_at", "first_name", "last_name", "first_key", "first_canon",
                 "last_key", "name_swapped", "birth_date", "gender", "email", "phone",
                 "loyalty_id", "login_id", "device_id", "address", "address_key", "city",
                 "city_key", "postcode", "country", "name_only", "payload_hash")
CLUSTER_OUTPUT = ("source", "source_record_id", "customer_id", "record_key", "event_at",
                  *CONSENTS)
LINK_OUTPUT = ("record_l", "record_r", "link_type", "match_weight", "match_probability",
               "refused_by", "same_customer")
# table -> its key columns: a run writes only the rows that differ from the stored ones
KEYS = {"identity_records": ("record_key",),
        "identity_clusters": ("source", "source_record_id"),
        "identity_links": ("record_l", "record_r", "link_type"),
        "golden_profiles": ("customer_id",)}


def _changes(engine: Engine, table: str, new_sql: str, old_sql: str,
             columns: tuple[str, ...] | str) -> tuple[pa.Table, pa.Table]:
    """(rows to write, keys to delete) of `table`: new rows that differ from the stored ones,
    and the keys of changed or vanished rows."""
    cols = columns if isinstance(columns, str) else _cols(columns)
    keys = _cols(KEYS[table])
    engine.create_table(f"new_{table}", f"select {cols} from ({new_sql}) as n")
    engine.create_table(f"old_{table}", f"select {cols} from ({old_sql}) as o")
    engine.create_table(f"write_{table}", f"""
        select * from new_{table} except select * from old_{table}""")
    deletes = engine.to_arrow(f"""
        select {keys} from write_{table}
        union
        (select {keys} from old_{table} except select {keys} from new_{table})""")
    return engine.to_arrow(f"select * from write_{table}"), deletes


def _outputs(engine: Engine, golden_columns: list[str]) -> dict[str, tuple[pa.Table, pa.Table]]:
    """Per identity table: the rows to write and the keys to delete (only what changed)."""
    resolved_cols = ", ".join(
        {"customer_id": "c.customer_id", "status": "'resolved' as status",
         "payload_hash": "coalesce(n.payload_hash, e.payload_hash) as payload_hash"}.get(
            c, f"m.{c}") for c in RECORD_OUTPUT)
    unresolved_cols = ", ".join(
        {"customer_id": "cast(null as varchar) as customer_id",
         "status": "'unresolved' as status", "payload_hash": "n.payload_hash"}.get(
            c, f"m.{c}") for c in RECORD_OUTPUT)
    grown_cols = ", ".join(
        {"n_rows": "u.n_rows + a.n as n_rows",
         "first_seen_at": "least(u.first_seen_at, a.first_seen) as first_seen_at",
         "last_seen_at": "greatest(u.last_seen_at, a.last_seen) as last_seen_at"}.get(
            c, f"u.{c}") for c in RECORD_OUTPUT)
    out = {}
    out["identity_records"] = _changes(engine, "identity_records", f"""
        select {resolved_cols} from r_match m
        join record_customers c on c.record_key = m.record_key
        left join new_records n on n.record_key = m.record_key
        left join r_existing e on e.record_key = m.record_key
        union all
        select {unresolved_cols}
        from match_subset m join new_records n on n.record_key = m.record_key
        where not m.usable
        union all
        select {grown_cols}
        from matched_unresolved u
        join (select record_key, count(*) as n, min(event_at) as first_seen,
                     max(event_at) as last_seen
              from new_rows group by record_key) a on a.record_key = u.record_key""", f"""
        select {_cols(RECORD_OUTPUT)} from r_existing
        union all
        select {_cols(RECORD_OUTPUT)} from matched_unresolved
        union all
        select {", ".join("record_key" if c == "record_key" else f"null as {c}"
                          for c in RECORD_OUTPUT)} from deleted_records""", RECORD_OUTPUT)
    out["identity_clusters"] = _changes(engine, "identity_clusters", f"""
        select r.source, r.source_record_id, c.customer_id, r.record_key, r.event_at,
               {", ".join(f"r.{c}" for c in CONSENTS)}
        from row_records r join record_customers c on c.record_key = r.record_key""",
        "select * from r_rows_old where recluster", CLUSTER_OUTPUT)
    out["identity_links"] = _changes(engine, "identity_links", """
        with refused as (select record_l, record_r, link_type, min(refused_by) as refused_by
                         from refusals group by record_l, record_r, link_type),
             links as (select record_l, record_r, link_type, weight as match_weight,
                              match_probability from r_links
                       union all
                       select record_l, record_r, link_type, cast(null as double),
                              cast(1.0 as double) from steward_links)
        select l.record_l, l.record_r, l.link_type, l.match_weight, l.match_probability,
               f.refused_by, coalesce(cl.customer_id = cr.customer_id, false) as same_customer
        from links l
        left join refused f on f.record_l = l.record_l and f.record_r = l.record_r
                           and f.link_type = l.link_type
        left join record_customers cl on cl.record_key = l.record_l
        left join record_customers cr on cr.record_key = l.record_r""", """
        select s.* from stored_links s
        join cluster_keys kl on kl.record_key = s.record_l
        join cluster_keys kr on kr.record_key = s.record_r
        union
        select s.* from stored_links s join deleted_records d on d.record_key = s.record_l
        union
        select s.* from stored_links s join deleted_records d on d.record_key = s.record_r""",
        LINK_OUTPUT)
    out["golden_profiles"] = _changes(engine, "golden_profiles", "select * from golden_profiles",
                                      "select * from r_golden_old",
                                      ", ".join(f'"{c}"' for c in golden_columns))
    out["identity_identifiers"] = (engine.to_arrow("""
        select c.kind, c.value, c.class, c.people, c.records from identifier_classes c
        join v_re v on v.kind = c.kind and v.value = c.value"""), engine.to_arrow(
        "select kind, value from v_re"))
    return out


def _apply(con: duckdb.DuckDBPyConnection, outputs: dict[str, tuple[pa.Table, pa.Table]],
           ) -> dict[str, int]:
    """Delete the changed and vanished rows and insert the changed ones (inside the caller's
    transaction): only what differs is rewritten, never a whole table. Returns rows written."""
    written = {}
    keys_of = {**KEYS, "identity_identifiers": ("kind", "value")}
    for table, (rows, deletes) in outputs.items():
        con.register("__inc_rows", rows)
        con.register("__inc_deletes", deletes)
        try:
            match = " and ".join(f"t.{k} = d.{k}" for k in keys_of[table])
            con.execute(f"delete from {SCHEMA}.{table} t using __inc_deletes d where {match}")
            con.execute(f"insert into {SCHEMA}.{table} by name select * from __inc_rows")
        finally:
            con.unregister("__inc_rows")
            con.unregister("__inc_deletes")
        written[table] = rows.num_rows
    return written


def _summary(f: dict[str, Any]) -> StepSummary:
    summary = StepSummary(title="resolve (incremental)", figures=f)
    summary.add("new batches", f["new_batches"])
    for channel, n in sorted(f["rows_in"].items()):
        summary.add(f"new records in: {channel}", n)
    summary.add("new identity records", f["new_records"])
    summary.add("attached to existing customers (identity records)", f["attached_records"])
    ids = f["ids"]
    summary.add("new customers", ids["created"])
    summary.add("merges / splits logged",
                f"{ids.get('events_merge', 0) + ids.get('events_override_merge', 0):,} / "
                f"{ids.get('events_split', 0) + ids.get('events_override_split', 0):,}")
    summary.add("customers re-clustered / only refreshed",
                f"{f['customers_touched']:,} / {f['customers_refreshed']:,}")
    summary.add("identity records re-clustered", f["records_reclustered"])
    summary.add("Splink: new records / candidates / links",
                f"{f['model']['new_records']:,} / {f['model']['candidates']:,} / "
                f"{f['model']['links']:,}")
    summary.add("customers now", f["customers"])
    summary.add("rows written", ", ".join(f"{k} {v:,}" for k, v in f["rows_written"].items()))
    summary.add("time", "  ".join(f"{k} {v:.1f}s" for k, v in f["seconds"].items())
                + f"  (total {f['seconds_total']:.1f}s)")
    if f["overrides_changed"]:
        summary.notes.append("overrides applied since the last run: "
                             + ", ".join(f["overrides_changed"]))
    return summary
