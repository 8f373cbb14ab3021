"""The identity state that outlives runs, in the warehouse's `identity` schema.

- `customer_ids`: every customer id ever issued (the registry): status `active` / `merged` /
  `retired` / `erased`, origin `new` / `split` / `legacy`, issue order, the runs that issued and
  retired it, `merged_into`. Written by resolve, and by erasure through `mark_erased` (erasure
  also calls `forget_records` to take erased records out of history evidence and overrides).
- `customer_id_history`: every merge and split, with run, time, the surviving and the other id,
  source records moved and evidence (JSON). Written by resolve.
- `steward_overrides`: must-link, cannot-link and shared-identifier overrides with author and
  reason; removing one deactivates it. Written by `cdp override`, read by resolve.
- `resolve_runs`: one row per run: mode, times, batches read (JSON), ids created, merges,
  splits, overrides applied, figures (JSON; `trigger` in it names who asked for the run, e.g.
  `airflow:cdp_identity/<run id>`).
- `resolved_batches`: every lake batch the current identity tables reflect (an incremental run
  reads the others).

None of these is in `identity.store.TABLES`, so a full run never replaces them; each run updates
them in the very transaction that writes its outputs, so ids, history and outputs never
disagree after a crash. They are state, not derived data: back them up with the warehouse.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from cdp.config import Settings
from cdp.errors import CdpError
from identity.stable_ids import Assignment, IdChange
from identity.store import SCHEMA, has_table, open_warehouse_if_any

DDL = {
    "customer_ids": """
        customer_id varchar not null, status varchar not null, origin varchar,
        issued_seq bigint, issued_run varchar, issued_at timestamp,
        retired_run varchar, retired_at timestamp, merged_into varchar""",
    "customer_id_history": """
        run_id varchar, changed_at timestamp, event varchar, customer_id varchar,
        other_customer_id varchar, source_records bigint, evidence varchar""",
    "steward_overrides": """
        override_id varchar not null, kind varchar not null, left_ref varchar,
        right_ref varchar, identifier_kind varchar, identifier_value varchar,
        author varchar not null, reason varchar not null, created_at timestamp not null,
        active boolean not null, left_customer_id varchar, right_customer_id varchar,
        removed_at timestamp, removed_by varchar""",
    "resolve_runs": """
        run_id varchar not null, mode varchar, started_at timestamp, finished_at timestamp,
        batches_read varchar, source_records bigint, customers bigint, created bigint,
        attached bigint, merged bigint, split bigint, retired bigint,
        overrides_applied varchar, figures varchar""",
    "resolved_batches": "batch_id varchar, channel varchar, run_id varchar",
}
PERSISTENT = tuple(DDL)
STATUSES = ("active", "merged", "retired", "erased")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the persistent identity tables that do not exist yet (inside the caller's
    transaction)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for name, columns in DDL.items():
        con.execute(f"create table if not exists {SCHEMA}.{name} ({columns})")


def new_run_id(now: datetime) -> str:
    """Sortable and unique: start time (UTC) to the microsecond, and a random suffix. (To the
    second, two runs in one second sorted by their suffixes: the "last run" could be the
    first. An id of that older form still sorts before a later one of this form.)"""
    return f"{now:%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex[:6]}"


def utc_now() -> datetime:
    """Naive UTC, like the lake's timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class PreviousState:
    """What the last run left behind (read once at the start of a run)."""

    last_run: dict[str, Any] | None = None
    # previous assignment: one row per resolved source record
    clusters: pa.Table | None = None
    issue_order: dict[str, int] = field(default_factory=dict)  # every registered id
    statuses: dict[str, str] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    overrides: list[dict[str, Any]] = field(default_factory=list)  # active ones
    removed_overrides: list[dict[str, Any]] = field(default_factory=list)
    resolved_batches: set[str] = field(default_factory=set)
    legacy: list[str] = field(default_factory=list)  # ids found without a registry entry
    token: tuple[Any, ...] = (None, None)  # see _token

    @property
    def taken(self) -> set[str]:
        """Every id that may never be issued again."""
        return set(self.issue_order) | self.erased

    def previous_active(self) -> set[str]:
        return {i for i, s in self.statuses.items() if s == "active"}


def _token(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """What must not change between reading the state and writing the run's outputs: the last
    run, and the erasures (another process's `cdp forget` or `cdp resolve`)."""
    last = (con.execute(f"select max(run_id) from {SCHEMA}.resolve_runs").fetchall()[0][0]
            if has_table(con, "resolve_runs") else None)
    erased = (con.execute(f"select count(*), max(erased_at) from {SCHEMA}.erased_customers"
                          ).fetchall()[0] if has_table(con, "erased_customers") else None)
    return (last, erased)


def _last_run(con: duckdb.DuckDBPyConnection,
              trigger: str | None = None) -> dict[str, Any] | None:
    if not has_table(con, "resolve_runs"):
        return None
    where, params = "", []
    if trigger is not None:
        where, params = "where json_extract_string(figures, '$.trigger') = ?", [trigger]
    rows = con.sql(f"select * from {SCHEMA}.resolve_runs {where} order by run_id desc limit 1",
                   params=params or None).to_arrow_table().to_pylist()
    return rows[0] if rows else None


def read_last_run(settings: Settings, trigger: str | None = None) -> dict[str, Any] | None:
    """The run log's last row (`identity.resolve_runs`), or the last one asked for by
    `trigger`; None if there is none. Reads nothing else of the state (registry, overrides,
    batches) that `read_state` reads."""
    con = open_warehouse_if_any(settings)
    if con is None:
        return None
    try:
        return _last_run(con, trigger)
    finally:
        con.close()


def read_state(settings: Settings, with_clusters: bool = True) -> PreviousState:
    """The previous run's state; empty when there is no warehouse or no previous run."""
    con = open_warehouse_if_any(settings)
    state = PreviousState()
    if con is None:
        return state
    try:
        state.token = _token(con)
        state.last_run = _last_run(con)
        if has_table(con, "customer_ids"):
            registry = con.execute(
                f"select customer_id, issued_seq, status from {SCHEMA}.customer_ids").fetchall()
            state.issue_order = {c: int(seq or 0) for c, seq, _ in registry}
            state.statuses = {c: s for c, _, s in registry}
        if has_table(con, "erased_customers"):
            state.erased = {r[0] for r in con.execute(
                f"select distinct customer_id from {SCHEMA}.erased_customers").fetchall()}
        if has_table(con, "steward_overrides"):
            rows = con.sql(f"select * from {SCHEMA}.steward_overrides order by override_id"
                           ).to_arrow_table().to_pylist()
            state.overrides = [r for r in rows if r["active"]]
            state.removed_overrides = [r for r in rows if not r["active"]]
        if has_table(con, "resolved_batches"):
            state.resolved_batches = {r[0] for r in con.execute(
                f"select batch_id from {SCHEMA}.resolved_batches").fetchall()}
        if has_table(con, "identity_clusters") and all(
                s == "erased" for s in state.statuses.values()):
            # A warehouse written before the registry existed: its ids become `legacy`
            # entries, oldest-first by id (nothing better is known about their age).
            found = {r[0] for r in con.execute(
                f"select distinct customer_id from {SCHEMA}.identity_clusters "
                "where customer_id is not null").fetchall()}
            legacy = sorted(found - set(state.issue_order))
            start = max(state.issue_order.values(), default=0)
            for i, cid in enumerate(legacy, start=1):
                state.issue_order[cid] = start + i
                state.statuses[cid] = "active"
            state.legacy = legacy
        if with_clusters and has_table(con, "identity_clusters"):
            state.clusters = con.sql(f"""
                select source, source_record_id, customer_id
                from {SCHEMA}.identity_clusters""").to_arrow_table()
    finally:
        con.close()
    return state


@dataclass
class RunRecord:
    run_id: str
    mode: str  # full | incremental
    started_at: datetime
    batches: dict[str, str]  # batch id -> channel, read by this run
    figures: dict[str, Any] = field(default_factory=dict)
    overrides_applied: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # source_records, customers, ...
    trigger: str | None = None  # who asked for the run (kept in the run log's figures)


def persist_run(con: duckdb.DuckDBPyConnection, state: PreviousState, run: RunRecord,
                assignment: Assignment, replace_batches: bool) -> None:
    """Update the registry, history, run log and resolved batches for one run, inside the
    transaction that writes its outputs. Refuses (rolls the run back) when another run or an
    erasure finished since this run read the state."""
    ensure_tables(con)
    if _token(con) != state.token:
        raise CdpError("another `cdp resolve` or an erasure changed the identity tables while "
                       "this run was working; nothing was written: run it again")
    now = utc_now()
    start = max(state.issue_order.values(), default=0)
    registry_rows: list[tuple] = [
        (cid, "active", "legacy", state.issue_order[cid], None, None, None, None, None)
        for cid in state.legacy]
    for i, (cid, origin) in enumerate(assignment.issued, start=1):
        registry_rows.append((cid, "active", origin, start + i, run.run_id, now, None, None,
                              None))
    _insert(con, "customer_ids", registry_rows, [
        ("customer_id", pa.string()), ("status", pa.string()), ("origin", pa.string()),
        ("issued_seq", pa.int64()), ("issued_run", pa.string()),
        ("issued_at", pa.timestamp("us")), ("retired_run", pa.string()),
        ("retired_at", pa.timestamp("us")), ("merged_into", pa.string())])
    retire = [(cid, "merged", into) for cid, into in assignment.merged.items()]
    retire += [(cid, "erased" if cid in state.erased else "retired", None)
               for cid in assignment.retired]
    if retire:
        table = pa.table({"customer_id": [r[0] for r in retire],
                          "status": [r[1] for r in retire],
                          "merged_into": pa.array([r[2] for r in retire], pa.string())})
        con.register("__retire", table)
        try:
            con.execute(f"""
                update {SCHEMA}.customer_ids as c
                set status = r.status, merged_into = r.merged_into,
                    retired_run = ?, retired_at = ?
                from __retire r where c.customer_id = r.customer_id""", [run.run_id, now])
        finally:
            con.unregister("__retire")
    write_history(con, run.run_id, now, assignment.changes)
    batches = sorted(run.batches)
    if replace_batches:
        con.execute(f"delete from {SCHEMA}.resolved_batches")
    _insert(con, "resolved_batches", [(b, run.batches[b], run.run_id) for b in batches],
            [("batch_id", pa.string()), ("channel", pa.string()), ("run_id", pa.string())])
    c = run.counts
    con.execute(f"insert into {SCHEMA}.resolve_runs values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    run.run_id, run.mode, run.started_at, now, json.dumps(batches),
                    c.get("source_records"), c.get("customers"), len(assignment.issued),
                    c.get("attached"), sum(1 for x in assignment.changes
                                           if x.event.endswith("merge")),
                    sum(1 for x in assignment.changes if x.event.endswith("split")),
                    len(assignment.retired), json.dumps(sorted(run.overrides_applied)),
                    json.dumps({**run.figures, **({"trigger": run.trigger} if run.trigger
                                                  else {})}, default=str)])


def write_history(con: duckdb.DuckDBPyConnection, run_id: str, when: datetime,
                  changes: Sequence[IdChange]) -> None:
    _insert(con, "customer_id_history", [
        (run_id, when, c.event, c.customer_id, c.other_customer_id, c.source_records,
         json.dumps(c.evidence, sort_keys=True, default=str)) for c in changes],
        [("run_id", pa.string()), ("changed_at", pa.timestamp("us")), ("event", pa.string()),
         ("customer_id", pa.string()), ("other_customer_id", pa.string()),
         ("source_records", pa.int64()), ("evidence", pa.string())])


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: Iterable[tuple],
            schema: list[tuple[str, pa.DataType]]) -> None:
    rows = list(rows)
    if not rows:
        return
    table = pa.table({col: pa.array([r[i] for r in rows], typ)
                      for i, (col, typ) in enumerate(schema)})
    view = f"__insert_{name}"
    con.register(view, table)
    try:
        columns = ", ".join(col for col, _ in schema)
        con.execute(f"insert into {SCHEMA}.{name} ({columns}) select {columns} from {view}")
    finally:
        con.unregister(view)


def mark_erased(con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str],
                erased_at: datetime | None = None) -> None:
    """For erasure (`cdp forget`), inside its own transaction: record that these ids were
    erased, so they are never issued again. Ids the registry does not know yet (a warehouse
    from before the registry) are added. Resolve also reads `identity.erased_customers`, so an
    erased id stays unavailable even if this was not called."""
    if not customer_ids:
        return
    ensure_tables(con)
    when = erased_at or utc_now()
    table = pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())})
    con.register("__erased", table)
    try:
        con.execute(f"""
            update {SCHEMA}.customer_ids as c set status = 'erased', retired_at = ?
            from __erased e where c.customer_id = e.customer_id""", [when])
        start = con.execute(
            f"select coalesce(max(issued_seq), 0) from {SCHEMA}.customer_ids").fetchall()[0][0]
        con.execute(f"""
            insert into {SCHEMA}.customer_ids (customer_id, status, origin, issued_seq,
                                               retired_at)
            select e.customer_id, 'erased', 'legacy', ? + row_number() over (
                       order by e.customer_id), ?
            from __erased e
            where e.customer_id not in (select customer_id from {SCHEMA}.customer_ids)""",
                    [start, when])
    finally:
        con.unregister("__erased")


def forget_records(con: duckdb.DuckDBPyConnection, source_records: Iterable[tuple[str, str]],
                   identifiers: Iterable[tuple[str, str]] = (),
                   when: datetime | None = None) -> dict[str, int]:
    """For erasure, inside its transaction: take erased source records (`(channel,
    source_record_id)`; record keys are `channel:id` too) and identifier values (`(kind,
    standardised value)`) out of the state tables. History evidence names them as `erased`;
    overrides that reference them are deactivated (removed by `erasure`) and their reference
    or value blanked. Ids stay: they are pseudonymous and must never be reissued. Returns how
    many history rows and overrides were changed."""
    ensure_tables(con)
    refs = {f"{channel}:{record_id}" for channel, record_id in source_records}
    values = {(kind, value) for kind, value in identifiers}
    changed = {"customer_id_history": 0, "steward_overrides": 0}
    if refs:
        for rowid, evidence in con.execute(
                f"select rowid, evidence from {SCHEMA}.customer_id_history").fetchall():
            data = json.loads(evidence or "{}")
            hit = False
            for link in data.get("links", []) + data.get("refused_links", []):
                for side in ("record_l", "record_r"):
                    if link.get(side) in refs:
                        link[side] = "erased"
                        hit = True
            if hit:
                con.execute(f"update {SCHEMA}.customer_id_history set evidence = ? "
                            "where rowid = ?", [json.dumps(data, sort_keys=True), rowid])
                changed["customer_id_history"] += 1
    for row in con.sql(f"select * from {SCHEMA}.steward_overrides").to_arrow_table().to_pylist():
        left, right = row["left_ref"] in refs, row["right_ref"] in refs
        value = (row["identifier_kind"], row["identifier_value"]) in values
        if not (left or right or value):
            continue
        con.execute(f"""
            update {SCHEMA}.steward_overrides
            set left_ref = ?, right_ref = ?, identifier_value = ?, active = false,
                removed_at = coalesce(removed_at, ?), removed_by = coalesce(removed_by, 'erasure')
            where override_id = ?""", [
            "erased" if left else row["left_ref"], "erased" if right else row["right_ref"],
            None if value else row["identifier_value"], when or utc_now(),
            row["override_id"]])
        changed["steward_overrides"] += 1
    return changed
