"""Sync state in the warehouse (schema `activation`).

  sync_state     one row per member a destination has (or is being sent), per segment: the
                 fingerprint (md5 of layout and payload, what diffs compare), the layout (key
                 names) and the payload (the values; hashed keys for ad platforms). A later
                 removal sends exactly this payload, even after the profile changed or was
                 erased. `batch_id` is the batch that added the row.
  sync_inflight  the rows of batches handed to a destination whose outcome is not settled:
                 written and committed *before* the request is sent. An addition's state row
                 is written at the same time and counts as delivered only once its in-flight
                 row is gone; a removal's in-flight row points at the state row to delete.
                 Settling a batch is one transaction (state, in-flight rows, log row). A crash
                 in between, or a batch that failed (5xx, timeouts, throttling), leaves its
                 rows here: the next run resends that batch first, same id, same rows.
  sync_log       one row per batch: run id, batch id, destination, segment, operation, rows
                 attempted / accepted / rejected, status, error (status codes, never data).
  sync_runs      one row per (run, destination, segment): member counts, matchable share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from cdp.activation.destinations.base import ADD, BatchResult

SCHEMA = "activation"
DDL = {
    "sync_state": """(
        destination varchar not null, segment varchar not null, customer_id varchar not null,
        fingerprint varchar not null, layout varchar not null, payload varchar not null,
        batch_id varchar not null, run_id varchar, added_at timestamp)""",
    "sync_inflight": """(
        batch_id varchar not null, run_id varchar, created_at timestamp,
        destination varchar not null, segment varchar not null, operation varchar not null,
        position integer not null, customer_id varchar not null,
        fingerprint varchar not null, reason varchar)""",
    "sync_log": """(
        run_id varchar, batch_id varchar, logged_at timestamp, destination varchar,
        segment varchar, operation varchar, rows_attempted bigint, rows_accepted bigint,
        rows_rejected bigint, status varchar, error varchar, replayed boolean)""",
    "sync_runs": """(
        run_id varchar, started_at timestamp, destination varchar, segment varchar,
        full_sync boolean, members bigint, eligible bigint, skipped_no_consent bigint,
        skipped_erased bigint, skipped_no_profile bigint, skipped_no_identifier bigint,
        adds bigint, removes bigint, accepted bigint, rejected bigint, failed_batches bigint,
        matchable_share double)""",
}


@dataclass
class PendingBatch:
    batch_id: str
    operation: str
    created_at: datetime
    rows: int


@dataclass
class StagedRows:
    """A batch's rows in send order."""

    customer_ids: list[str]
    reasons: list[str]
    fingerprints: list[str]
    layouts: list[str]
    payloads: list[str]


class Store:
    """Table names are fixed by code; values always go in as parameters."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dry_run: bool) -> None:
        self.con = con
        self.dry_run = dry_run
        if dry_run:
            # Read-only warehouse: read the real state when it exists, else empty stand-ins.
            present = {r[0] for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [SCHEMA]).fetchall()}
            self.names = {}
            for table, ddl in DDL.items():
                if table in present:
                    self.names[table] = f"{SCHEMA}.{table}"
                else:
                    con.execute(f"create or replace temp table _dry_{table} {ddl}")
                    self.names[table] = f"_dry_{table}"
        else:
            con.execute(f"create schema if not exists {SCHEMA}")
            for table, ddl in DDL.items():
                con.execute(f"create table if not exists {SCHEMA}.{table} {ddl}")
            self.names = {table: f"{SCHEMA}.{table}" for table in DDL}

    @property
    def state(self) -> str:
        return self.names["sync_state"]

    @property
    def inflight(self) -> str:
        return self.names["sync_inflight"]

    def delivered_sql(self) -> str:
        """State rows the destination acknowledged: (destination, segment, customer_id,
        fingerprint, layout, payload, batch_id) minus additions still in flight."""
        return (f"select s.* from {self.state} s where not exists (select 1 from "
                f"{self.inflight} i where i.operation = 'add' and i.batch_id = s.batch_id "
                "and i.customer_id = s.customer_id)")

    def _transaction(self, statements: list[tuple[str, list | dict]]) -> None:
        self.con.execute("begin transaction")
        try:
            for sql, params in statements:
                if isinstance(params, dict):  # DuckDB refuses unused named parameters
                    params = {k: v for k, v in params.items() if f"${k}" in sql}
                self.con.execute(sql, params)
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise

    # --- in flight ---------------------------------------------------------------------------

    def pending_batches(self, destination: str, segment: str) -> list[PendingBatch]:
        """Unsettled batches, removals before additions, oldest first."""
        rows = self.con.execute(
            f"select batch_id, operation, min(created_at), count(*) from {self.inflight} "
            "where destination = ? and segment = ? group by batch_id, operation "
            "order by operation = 'add', min(created_at), batch_id",
            [destination, segment]).fetchall()
        return [PendingBatch(*row) for row in rows]

    def pending_rows(self, destination: str, segment: str) -> int:
        return int(self.con.execute(
            f"select count(*) from {self.inflight} where destination = ? and segment = ?",
            [destination, segment]).fetchall()[0][0])

    def stage(self, batch_id: str, run_id: str, created_at: datetime, destination: str,
              segment: str, operation: str, rows: StagedRows) -> None:
        """Record a batch as in flight (and an addition's state rows) and commit, before
        anything is sent. Positions are the rows' order in the request."""
        size = len(rows.customer_ids)
        table = pa.table({
            "position": pa.array(range(size), pa.int32()),
            "customer_id": pa.array(rows.customer_ids, pa.string()),
            "reason": pa.array(rows.reasons, pa.string()),
            "fingerprint": pa.array(rows.fingerprints, pa.string()),
            "layout": pa.array(rows.layouts, pa.string()),
            "payload": pa.array(rows.payloads, pa.string()),
        })
        params = {"batch": batch_id, "run": run_id, "at": created_at, "dest": destination,
                  "seg": segment, "op": operation}
        statements: list[tuple[str, list | dict]] = [(
            f"insert into {self.inflight} select $batch, $run, $at, $dest, $seg, $op, "
            "position, customer_id, fingerprint, reason from _staged", params)]
        if operation == ADD:
            statements.append((
                f"insert into {self.state} select $dest, $seg, customer_id, fingerprint, "
                "layout, payload, $batch, $run, $at from _staged", params))
        self.con.register("_staged", table)
        try:
            self._transaction(statements)
        finally:
            self.con.unregister("_staged")

    def staged_rows(self, batch_id: str, operation: str) -> StagedRows:
        """The rows of an unsettled batch (for resending it), in their original order."""
        if operation == ADD:
            join = "s.batch_id = i.batch_id and s.customer_id = i.customer_id"
        else:
            join = ("s.destination = i.destination and s.segment = i.segment and "
                    "s.customer_id = i.customer_id and s.fingerprint = i.fingerprint")
        rows = self.con.execute(
            f"select i.customer_id, i.reason, i.fingerprint, any_value(s.layout), "
            f"any_value(s.payload) from {self.inflight} i join {self.state} s on {join} "
            "where i.batch_id = ? group by i.position, i.customer_id, i.reason, "
            "i.fingerprint order by i.position", [batch_id]).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
        return StagedRows(*(list(c) for c in columns))

    def park_ineligible(self, batch_id: str, run_id: str) -> int:
        """An unsettled *addition* may or may not have reached the destination. Its rows whose
        customer may no longer be sent (left, consent withdrawn, erased) are not resent: they
        count as possibly delivered (their in-flight rows go), so the diff removes them."""
        rows = (f"from {self.inflight} i where i.batch_id = $batch and not exists (select 1 "
                "from _cand c where c.customer_id = i.customer_id and c.status = 'eligible')")
        moved = int(self.con.execute(f"select count(*) {rows}", {"batch": batch_id})
                    .fetchall()[0][0])
        if moved:
            self._transaction([(
                f"delete from {self.inflight} where batch_id = $batch and customer_id in "
                f"(select i.customer_id {rows})", {"batch": batch_id})])
        return moved

    # --- settling ----------------------------------------------------------------------------

    def settle(self, run_id: str, batch_id: str, destination: str, segment: str,
               operation: str, attempted: int, result: BatchResult,
               rejected_positions: Iterable[int], replayed: bool,
               replaces_customer: bool, all_new: bool = False) -> None:
        """Apply a batch's outcome in one transaction with its log row.

        accepted: the additions count as delivered, the removed rows leave the state, but for
        the rejected rows, which return to where they were. rejected: nothing changes but the
        additions' rows go (the next diff proposes them again). failed: nothing changes; the
        batch stays in flight and the next run resends it with the same id.
        `replaces_customer`: a delivered addition replaces the customer's earlier rows (keyed
        destinations upsert by customer id; audiences remove old keys explicitly).
        `all_new`: no row of the batch had a state row before (skips a scan of the state).
        """
        rejected = sorted(set(rejected_positions))
        if result.status == "rejected":
            rejected = list(range(attempted))
        params = {"batch": batch_id, "rejected": rejected, "dest": destination, "seg": segment}
        batch_rows = f"from {self.inflight} i where i.batch_id = $batch"
        refused = "list_contains($rejected::integer[], i.position)"
        statements: list[tuple[str, list | dict]] = []
        if result.status != "failed":
            if operation == ADD:
                if rejected:
                    statements.append((
                        f"delete from {self.state} s where s.batch_id = $batch and exists "
                        f"(select 1 {batch_rows} and {refused} "
                        "and i.customer_id = s.customer_id)", params))
                if not all_new and result.status == "accepted":
                    # A member already there (full resync, changed keys of a keyed
                    # destination) is replaced, never duplicated.
                    same = "" if replaces_customer else "and i.fingerprint = s.fingerprint"
                    statements.append((
                        f"delete from {self.state} s where s.destination = $dest "
                        f"and s.segment = $seg and s.batch_id <> $batch and exists (select 1 "
                        f"{batch_rows} and not {refused} and i.customer_id = s.customer_id "
                        f"{same})", params))
            elif result.status == "accepted":
                statements.append((
                    f"delete from {self.state} s where s.destination = $dest "
                    f"and s.segment = $seg and exists (select 1 {batch_rows} and not {refused} "
                    "and i.customer_id = s.customer_id and i.fingerprint = s.fingerprint)",
                    params))
            statements.append((f"delete from {self.inflight} where batch_id = $batch", params))
        statements.append((
            f"insert into {self.names['sync_log']} values "
            "(?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, batch_id, destination, segment, operation, attempted, result.accepted,
             result.rejected, result.status, result.error, replayed]))
        self._transaction(statements)

    def record_run(self, values: list) -> None:
        if not self.dry_run:
            self.con.execute(
                f"insert into {self.names['sync_runs']} values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def state_segments(self, destination: str) -> list[str]:
        """Segments the destination holds or has in flight (a dropped segment is emptied)."""
        rows = self.con.execute(
            f"select segment from {self.state} where destination = ? union "
            f"select segment from {self.inflight} where destination = ?",
            [destination, destination]).fetchall()
        return [r[0] for r in rows]
