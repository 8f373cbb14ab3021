"""Purging the warehouse: identity tables, built marts, `identity.erased_customers`.

One transaction (readers see the warehouse before or after, never half-purged), then the file
is compacted: DuckDB leaves deleted values in the file's free blocks, so the warehouse is copied
into a fresh file (`COPY FROM DATABASE`) that replaces it, and no deleted value remains on disk.

- identity schema: `identity_clusters` rows of the erased customers or of tombstoned source
  records; `identity_records` of those, or carrying a tombstoned identifier; `identity_links`
  touching such a record; `golden_profiles` of the customers; `identity_identifiers` rows of
  tombstoned values. Other customers' golden profiles lose a tombstoned identifier they carried
  (a merge the guards refused can leave one there). Any other identity table loses rows naming
  a purged record (`record_key`, `record_l`, `record_r`, `source` + `source_record_id`); tables
  holding only customer ids (id history, id registry) keep them: ids are pseudonymous and must
  never be reissued.
- marts (every other schema's tables, as dbt built them): rows of the erased customers and of
  tombstoned source records are deleted now, so marketers querying segments no longer see them
  before the next `cdp build`; `segment_membership_changes` is kept (customer ids only) so the
  next build records the exit. Views (staging) read the lake, which is purged in place.
- activation schema: untouched. `sync_state` keeps the hashed keys that were delivered until
  the next `cdp sync` sends the removal (it needs them to address it) and then drops them.
- `identity.erased_customers(customer_id, erased_at, request_id, matched_by)`: every erased
  customer id; `cdp sync` removes them from every destination.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cdp.config import Settings
from cdp.erasure.locate import open_warehouse
from cdp.erasure.matcher import IDENTIFIER_KINDS, Tombstones
from cdp.errors import CdpError

log = logging.getLogger(__name__)

ERASED_TABLE = "erased_customers"
ERASED_DDL = ("(customer_id varchar not null, erased_at timestamp not null, "
              "request_id varchar, matched_by varchar)")
IDENTITY_TABLES = ("identity_clusters", "identity_records", "identity_links",
                   "golden_profiles", "identity_identifiers")
KEEP_HISTORY = {"segment_membership_changes"}  # customer ids only; the next build records exits
SKIP_SCHEMAS = {"identity", "activation", "information_schema", "pg_catalog"}
# golden profile column -> identifier kind (single values and lists)
GOLDEN_SINGLE = {"email": "email", "phone": "phone", "loyalty_id": "loyalty_id"}
GOLDEN_LISTS = {"emails": "email", "phones": "phone", "loyalty_ids": "loyalty_id"}


@dataclass
class WarehouseCounts:
    tables: dict[str, int] = field(default_factory=dict)   # "schema.table" -> rows removed
    profiles_scrubbed: int = 0      # other customers' golden profiles that lost a value
    erased_added: int = 0           # rows added to identity.erased_customers
    delivered: int = 0              # delivered (destination, segment) memberships to remove
    compacted: bool = False
    compact_needed: bool = False
    present: bool = True            # a warehouse exists

    @property
    def changed(self) -> bool:
        return bool(sum(self.tables.values()) or self.profiles_scrubbed or self.erased_added)


def _q(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def purge_warehouse(settings: Settings, tombstones: Tombstones, customer_ids: set[str],
                    erased_rows: list[tuple[str, datetime, str, str]], apply: bool,
                    compact_always: bool = False) -> WarehouseCounts:
    """Count (apply=False) or delete what belongs to the erased customers and records.

    `customer_ids`: every erased customer (this request and earlier ones); `erased_rows`:
    (customer_id, erased_at, request_id, matched_by) for `identity.erased_customers`."""
    counts = WarehouseCounts()
    con = open_warehouse(settings, read_only=not apply)
    if con is None:
        counts.present = False
        return counts
    try:
        con.execute("set enable_progress_bar = false")
        if apply:
            con.execute("begin transaction")
        try:
            _purge(con, tombstones, customer_ids, erased_rows, counts, apply)
            if apply:
                con.execute("commit")
        except Exception:
            if apply:
                con.execute("rollback")
            raise
    finally:
        con.close()
    counts.compact_needed = apply and (counts.changed or compact_always)
    if counts.compact_needed:
        counts.compacted = compact(settings)
    return counts


def _tables(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    """(schema, table) -> column names of every base table."""
    rows = con.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t on t.table_schema = c.table_schema "
        "and t.table_name = c.table_name where t.table_type = 'BASE TABLE' "
        "and t.table_catalog = current_database()").fetchall()
    tables: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in rows:
        tables.setdefault((schema, table), set()).add(column)
    return tables


def _purge(con: duckdb.DuckDBPyConnection, t: Tombstones, customer_ids: set[str],
           erased_rows: list[tuple[str, datetime, str, str]], counts: WarehouseCounts,
           apply: bool) -> None:
    tables = _tables(con)
    ident = {name: cols for (schema, name), cols in tables.items() if schema == "identity"}
    rows, keys = _matched_records(con, t, customer_ids, ident)
    con.register("_er_ids_arrow", pa.table({"customer_id": pa.array(sorted(customer_ids),
                                                                     pa.string())}))
    con.register("_er_keys_arrow", pa.table({"record_key": pa.array(sorted(keys), pa.string())}))
    con.register("_er_rows_arrow", pa.table({
        "source": pa.array([s for s, _ in rows], pa.string()),
        "source_record_id": pa.array([r for _, r in rows], pa.string())}))
    for name in ("ids", "keys", "rows"):
        con.execute(f"create or replace temp table _er_{name} as select * from _er_{name}_arrow")
        con.unregister(f"_er_{name}_arrow")

    def remove(schema: str, table: str, where: str, params: list | None = None) -> None:
        target = _q(schema, table)
        n = con.execute(f"select count(*) from {target} where {where}", params or []
                        ).fetchall()[0][0]
        if n and apply:
            con.execute(f"delete from {target} where {where}", params or [])
        counts.tables[f"{schema}.{table}"] = counts.tables.get(f"{schema}.{table}", 0) + n

    by_row = "(source, source_record_id) in (select source, source_record_id from _er_rows)"
    by_key = "record_key in (select record_key from _er_keys)"
    by_id = "customer_id in (select customer_id from _er_ids)"
    if "identity_clusters" in ident:
        remove("identity", "identity_clusters", f"{by_key} or {by_id} or {by_row}")
    if "identity_records" in ident:
        remove("identity", "identity_records", by_key)
    if "identity_links" in ident:
        remove("identity", "identity_links", "record_l in (select record_key from _er_keys) "
               "or record_r in (select record_key from _er_keys)")
    if "golden_profiles" in ident:
        remove("identity", "golden_profiles", by_id)
        _scrub_other_profiles(con, t, ident["golden_profiles"], counts, apply)
    if "identity_identifiers" in ident:
        _remove_identifiers(con, t, counts, apply)
    for name, cols in sorted(ident.items()):
        if name in IDENTITY_TABLES or name == ERASED_TABLE:
            continue
        where = _record_condition(cols)
        if where:
            remove("identity", name, where)
    for (schema, name), cols in sorted(tables.items()):
        if schema in SKIP_SCHEMAS or name in KEEP_HISTORY:
            continue
        conditions = [c for c in (by_id if "customer_id" in cols else None,
                                  _record_condition(cols)) if c]
        if conditions:
            remove(schema, name, " or ".join(conditions))
    counts.erased_added = _record_erased(con, erased_rows, ERASED_TABLE in ident, apply)
    if apply:
        _update_identity_state(con, t, customer_ids, rows, ident)
    if ("activation", "sync_state") in tables:
        counts.delivered = con.execute(
            f"select count(*) from activation.sync_state where {by_id}").fetchall()[0][0]
    counts.tables = {k: v for k, v in counts.tables.items() if v}


def _update_identity_state(con: duckdb.DuckDBPyConnection, t: Tombstones,
                           customer_ids: set[str], rows: set[tuple[str, str]],
                           ident: dict[str, set[str]]) -> None:
    """The id registry, merge/split evidence and steward overrides (identity/state.py): the
    erased ids are never issued again; erased record refs and identifier values leave the
    history evidence and the overrides."""
    from identity import state

    state.mark_erased(con, sorted(customer_ids))
    values: list[tuple[str, str]] = []
    if "steward_overrides" in ident:
        values = [(k, v) for k, v in con.execute(
            "select distinct identifier_kind, identifier_value from identity.steward_overrides "
            "where identifier_value is not null").fetchall() if t.has(k, v)]
    state.forget_records(con, rows, values)


def _record_condition(cols: set[str]) -> str | None:
    parts = []
    for column in ("record_key", "record_l", "record_r"):
        if column in cols:
            parts.append(f"{column} in (select record_key from _er_keys)")
    if {"source", "source_record_id"} <= cols:
        parts.append("(source, source_record_id) in "
                     "(select source, source_record_id from _er_rows)")
    return " or ".join(parts) or None


def _matched_records(con: duckdb.DuckDBPyConnection, t: Tombstones, customer_ids: set[str],
                     ident: dict[str, set[str]]
                     ) -> tuple[set[tuple[str, str]], set[str]]:
    """(source, source record id) rows and record keys to purge: the erased customers', the
    tombstoned records', and identity records carrying a tombstoned identifier."""
    rows: set[tuple[str, str]] = set()
    keys: set[str] = set()
    if "identity_clusters" in ident:
        table = con.sql("select source, source_record_id, customer_id, record_key "
                        "from identity.identity_clusters").to_arrow_table()
        for source, record_id, cid, key in zip(*(table.column(i).to_pylist() for i in range(4)),
                                               strict=True):
            if cid in customer_ids or t.record(source, record_id):
                rows.add((source, record_id))
                keys.add(key)
    if "identity_records" in ident:
        kinds = [k for k in IDENTIFIER_KINDS if k in ident["identity_records"]]
        columns = ", ".join(["record_key", "customer_id", *kinds])
        table = con.sql(f"select {columns} from identity.identity_records").to_arrow_table()
        lists = [table.column(i).to_pylist() for i in range(table.num_columns)]
        for row in zip(*lists, strict=True):
            key, cid, values = row[0], row[1], row[2:]
            if key in keys or cid in customer_ids or any(
                    t.has(kind, v) for kind, v in zip(kinds, values, strict=True)):
                keys.add(key)
        # a record's source rows go with it
        if "identity_clusters" in ident and keys:
            con.register("_er_keys_probe", pa.table({"k": pa.array(sorted(keys), pa.string())}))
            rows |= set(con.execute(
                "select source, source_record_id from identity.identity_clusters "
                "where record_key in (select k from _er_keys_probe)").fetchall())
            con.unregister("_er_keys_probe")
    return rows, keys


def _remove_identifiers(con: duckdb.DuckDBPyConnection, t: Tombstones,
                        counts: WarehouseCounts, apply: bool) -> None:
    pairs = con.execute("select distinct kind, value from identity.identity_identifiers"
                        ).fetchall()
    hits = [(k, v) for k, v in pairs if t.has(k, v)]
    if not hits:
        return
    con.register("_er_values", pa.table({"kind": pa.array([k for k, _ in hits], pa.string()),
                                         "value": pa.array([v for _, v in hits], pa.string())}))
    where = "(kind, value) in (select kind, value from _er_values)"
    n = con.execute(f"select count(*) from identity.identity_identifiers where {where}"
                    ).fetchall()[0][0]
    if apply:
        con.execute(f"delete from identity.identity_identifiers where {where}")
    con.unregister("_er_values")
    counts.tables["identity.identity_identifiers"] = n


def _scrub_other_profiles(con: duckdb.DuckDBPyConnection, t: Tombstones, cols: set[str],
                          counts: WarehouseCounts, apply: bool) -> None:
    """Remaining golden profiles that still carry a tombstoned identifier lose it."""
    singles = {c: k for c, k in GOLDEN_SINGLE.items() if c in cols and k in t.digests}
    lists = {c: k for c, k in GOLDEN_LISTS.items() if c in cols and k in t.digests}
    if not singles and not lists:
        return
    names = ["customer_id", *singles, *lists]
    table = con.sql(f"select {', '.join(names)} from identity.golden_profiles where "
                    "customer_id not in (select customer_id from _er_ids)").to_arrow_table()
    data = [table.column(n).to_pylist() for n in names]
    for row in zip(*data, strict=True):
        values = dict(zip(names, row, strict=True))
        changes: dict[str, Any] = {}
        for column, kind in singles.items():
            if t.has(kind, values[column]):
                changes[column] = None
                if f"{column}_source" in cols:
                    changes[f"{column}_source"] = None
        for column, kind in lists.items():
            items = values[column] or []
            kept = [v for v in items if not t.has(kind, v)]
            if len(kept) != len(items):
                changes[column] = kept
        if not changes:
            continue
        counts.profiles_scrubbed += 1
        if apply:
            assignments = ", ".join(f"{_q(c)} = ?" for c in changes)
            con.execute(f"update identity.golden_profiles set {assignments} "
                        "where customer_id = ?", [*changes.values(), values["customer_id"]])


def _record_erased(con: duckdb.DuckDBPyConnection,
                   erased_rows: list[tuple[str, datetime, str, str]], exists: bool,
                   apply: bool) -> int:
    """Add the erased customer ids missing from identity.erased_customers."""
    if not erased_rows:
        return 0
    present: set[str] = set()
    if exists:
        present = {r[0] for r in con.execute(
            "select distinct customer_id from identity.erased_customers").fetchall()}
    new = [r for r in erased_rows if r[0] not in present]
    if new and apply:
        con.execute("create schema if not exists identity")
        con.execute(f"create table if not exists identity.{ERASED_TABLE} {ERASED_DDL}")
        con.executemany(f"insert into identity.{ERASED_TABLE} values (?, ?, ?, ?)",
                        [list(r) for r in new])
    return len(new)


def compact(settings: Settings) -> bool:
    """Rewrite the warehouse file so deleted values leave no copy in its free blocks.

    The copy is checked (same tables, same row counts) before it replaces the file; a crash
    leaves the previous file (and a stray `.{name}.compact-*` file, removed next time).
    Returns False, changing nothing, when this process still holds the warehouse open through
    another connection (an in-process dbt build): replacing the file under it would send that
    connection's later writes to the old file. The next `cdp forget` compacts then."""
    path: Path = settings.resolved_paths.warehouse
    for stray in path.parent.glob(f".{path.name}.compact-*"):
        stray.unlink(missing_ok=True)
    if _held_in_process(path):
        log.warning("warehouse not compacted: this process holds it open elsewhere")
        return False
    fresh = path.with_name(f".{path.name}.compact-{uuid.uuid4().hex[:8]}")
    con = duckdb.connect(str(path))
    try:
        con.execute("set enable_progress_bar = false")
        name = con.execute("select current_database()").fetchall()[0][0]
        # ATTACH takes no parameters: the path is ours (config + a random suffix), quoted.
        con.execute(f"attach '{str(fresh).replace(chr(39), chr(39) * 2)}' as _compact")
        con.execute(f"copy from database {_q(name)} to _compact")
        before, after = _inventory(con, name), _inventory(con, "_compact")
        con.execute("detach _compact")
    except Exception:
        fresh.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    if before != after:
        fresh.unlink(missing_ok=True)
        raise CdpError("compacting the warehouse produced a different copy; the purged "
                       "warehouse was kept uncompacted (deleted values may remain in its free "
                       "blocks until DuckDB reuses them)")
    os.replace(fresh, path)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():  # pragma: no cover - closed connections checkpoint; belt and braces
        log.warning("a write-ahead log of the old warehouse file remained; removing it")
        wal.unlink()
    return True


def _held_in_process(path: Path) -> bool:
    """True when another connection of this process has the file open. DuckDB shares one
    database instance per file and process: a read-only probe fails if it is open read-write,
    and if it is open read-only the instance survives the probe (counted by reopening)."""
    try:
        probe = duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException:
        return True
    probe.close()
    try:
        duckdb.connect(str(path)).close()
    except duckdb.ConnectionException:
        return True
    return False


def _inventory(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int]:
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ?",
        [catalog]).fetchall()
    out = {}
    for schema, table in tables:
        out[f"{schema}.{table}"] = con.execute(
            f"select count(*) from {_q(catalog, schema, table)}").fetchall()[0][0]
    views = con.execute("select count(*) from duckdb_views() where database_name = ? "
                        "and not internal", [catalog]).fetchall()[0][0]
    out["(views)"] = views
    return out
