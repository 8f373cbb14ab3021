"""`cdp sync`: push segment membership to destinations as add / remove diffs.

Per (destination, segment):
 1. Members are read with their profile, consent for the destination's purpose and erasure
    status; eligible ones get their payload (normalised, hashed keys).
 2. Batches left unsettled by an earlier run (crash, destination down) are resent first,
    with their original batch id and rows: a receiver that dedupes on the id applies them
    once. Rows of an unsettled *add* whose customer may no longer be sent are not resent;
    they count as possibly delivered, so step 3 removes them.
 3. The diff against the state: adds = eligible members not delivered (or delivered with
    other keys; all of them with `full`); removes = delivered members who left, lost consent,
    were erased or lost every identifier (with the keys that were delivered). Customers with
    rows still unsettled are left out until those settle.
 4. Removes then adds, in batches of the destination's size. Each batch is staged as in
    flight (sync_inflight) and committed *before* it is sent, and settled after: the state
    advances only for the rows the destination accepted, in the same transaction that logs
    the batch and clears its in-flight rows. A crash between the two leaves the batch in
    flight (step 2): an unsent row is never marked sent, an acknowledged one never resent.
A failing batch is logged and kept in flight for the next run; the other batches still go.

Sending twice to a non-idempotent endpoint: the only rows ever resent are those of a batch
whose outcome is unknown, and they are resent as the same batch (same id, same rows), so the
receiver can recognise it: webhooks carry the id as `Idempotency-Key`. Meta, Google, TikTok
audiences, Postgres upserts and file exports are idempotent by nature (set semantics,
upsert, same file name).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cdp.activation.config import ActivationConfig, load_activation_config
from cdp.activation.destinations import ADD, REMOVE, Adapter, Batch, BatchResult, make_adapter
from cdp.activation.payload import NO_IDENTIFIER, PayloadBuilder, decode
from cdp.activation.source import ELIGIBLE, ERASED_STATUS, NO_CONSENT, NO_PROFILE, Source
from cdp.activation.state import StagedRows, Store
from cdp.config import Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary
from cdp.warehouse import connect

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000  # members turned into payloads at a time (bounds Python memory)
_CANDIDATES_DDL = ("(customer_id varchar, status varchar, fingerprint varchar, "
                   "matchable boolean, row bigint)")


@dataclass
class Run:
    run_id: str
    started_at: datetime
    full: bool
    dry_run: bool
    sample_size: int


@dataclass
class PairReport:
    """What happened for one (segment, destination)."""

    destination: str
    segment: str
    members: int = 0
    eligible: int = 0
    skipped: Counter = field(default_factory=Counter)  # no_consent, erased, no_profile, ...
    matchable: int = 0
    reachable: int = 0  # members that passed consent, erasure and profile checks
    adds: int = 0
    removes: int = 0
    removes_by_reason: Counter = field(default_factory=Counter)
    accepted: int = 0
    rejected: int = 0
    failed_batches: int = 0
    rejected_batches: int = 0
    replayed_rows: int = 0
    pending_rows: int = 0
    errors: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matchable_share(self) -> float | None:
        return self.matchable / self.reachable if self.reachable else None

    def figures(self) -> dict[str, Any]:
        return {
            "destination": self.destination, "segment": self.segment,
            "members": self.members, "eligible": self.eligible,
            "skipped_no_consent": self.skipped[NO_CONSENT],
            "skipped_erased": self.skipped[ERASED_STATUS],
            "skipped_no_profile": self.skipped[NO_PROFILE],
            "skipped_no_identifier": self.skipped[NO_IDENTIFIER],
            "adds": self.adds, "removes": self.removes,
            "removes_by_reason": dict(self.removes_by_reason),
            "accepted": self.accepted, "rejected": self.rejected,
            "failed_batches": self.failed_batches, "rejected_batches": self.rejected_batches,
            "replayed_rows": self.replayed_rows,
            "pending_rows": self.pending_rows, "matchable_share": self.matchable_share,
            "errors": list(self.errors), "sample": list(self.sample),
        }


def sync(settings: Settings, segments: list[str] | None = None,
         destinations: list[str] | None = None, full: bool = False,
         dry_run: bool = False) -> StepSummary:
    """Sync segment membership to the configured destinations (default: all of both).

    `full` resends every eligible member (and still removes those who left); `dry_run`
    computes the same plan, reports counts and a sample of hashed payloads, and neither
    sends anything nor changes any state.
    """
    config = load_activation_config(settings)
    chosen = _choose_destinations(config, destinations)
    warehouse = settings.resolved_paths.warehouse
    if not warehouse.exists():
        raise CdpError(f"warehouse {warehouse} does not exist: run `cdp build` first")
    run = Run(run_id=f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
              started_at=datetime.now(UTC).replace(tzinfo=None), full=full, dry_run=dry_run,
              sample_size=config.sample_size)
    adapters = [make_adapter(d, settings) for d in chosen]
    con = connect(settings, read_only=dry_run)
    reports: list[PairReport] = []
    threshold = None
    try:
        con.execute("set enable_progress_bar = false")
        if not dry_run:
            # Many small commits of large rows: checkpoint once at the end rather than every
            # few batches (the write-ahead log keeps every commit durable meanwhile).
            threshold = con.execute("select current_setting('checkpoint_threshold')"
                                    ).fetchall()[0][0]
            con.execute("set checkpoint_threshold = '1GB'")
        source = Source(con)
        if source.membership_rows() == 0:
            # An empty table after a build is far likelier a broken build than a world
            # where every segment emptied at once; syncing it would empty every audience.
            raise CdpError("segment_membership is empty: refusing to remove every member "
                           "from every destination (check `cdp build`)")
        store = Store(con, dry_run)
        con.execute(f"create or replace temp table _erased as {source.erased_sql()}")
        available = source.segments()
        pairs = [(a, s) for a in adapters
                 for s in _segments_for(a, available, store, segments)]
        _check_requested(segments, available, pairs)
        if not dry_run:
            for adapter in adapters:
                adapter.prepare()
        for adapter, segment in pairs:
            pair = PairSync(con, store, source, adapter, segment, run, settings.default_region)
            reports.append(pair.run_pair())
    finally:
        for adapter in adapters:
            adapter.close()
        if threshold:
            with contextlib.suppress(duckdb.Error):  # the write-ahead log holds it anyway
                con.execute("checkpoint")
                con.execute("set checkpoint_threshold = ?", [threshold])
        con.close()
    return _summary(reports, run)


def _choose_destinations(config: ActivationConfig, names: list[str] | None) -> list:
    if not names:
        return list(config.destinations.values())
    unknown = [n for n in names if n not in config.destinations]
    if unknown:
        raise CdpError(f"unknown destination(s) {unknown}; configured: "
                       f"{sorted(config.destinations)}")
    return [config.destinations[n] for n in names]


def _segments_for(adapter: Adapter, available: list[str], store: Store,
                  requested: list[str] | None) -> list[str]:
    config = adapter.config
    mapped = config.mapped_segments()
    if config.segments is not None:
        names = list(config.segments)
    elif mapped is not None:
        names = mapped
    else:
        # Every segment, plus any the destination still holds (a dropped segment empties).
        names = sorted(set(available) | set(store.state_segments(adapter.name)))
    return [s for s in names if requested is None or s in requested]


def _check_requested(requested: list[str] | None, available: list[str],
                     pairs: list[tuple[Adapter, str]]) -> None:
    if not requested:
        return
    covered = {s for _, s in pairs}
    unknown = [s for s in requested if s not in covered]
    if unknown:
        raise CdpError(f"segment(s) {unknown} are not synced to the chosen destinations "
                       f"(segments in the warehouse: {available})")


# --- one (destination, segment) --------------------------------------------------------------

class PairSync:
    """The sync of one segment to one destination (temp tables _cand and _plan)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, store: Store, source: Source,
                 adapter: Adapter, segment: str, run: Run, region: str) -> None:
        self.con, self.store, self.source = con, store, source
        self.adapter, self.segment, self.run = adapter, segment, run
        self.builder = PayloadBuilder(adapter.keys, region, adapter.sendable)
        self.report = PairReport(adapter.name, segment)
        # Payloads stay in Arrow memory, CHUNK_ROWS per array; DuckDB gets fingerprints and
        # row numbers (row // CHUNK_ROWS is the chunk, row % CHUNK_ROWS the index in it).
        self.payload_chunks: list[pa.Array] = []

    def run_pair(self) -> PairReport:
        report, store, run = self.report, self.store, self.run
        self.candidates()
        if not run.dry_run:
            self.replay()
        self.plan()
        report.adds = self.planned[ADD].num_rows
        report.removes = self.planned[REMOVE].num_rows
        report.removes_by_reason.update(dict(self.con.execute(
            "select reason, count(*) from _plan where op = 'remove' group by reason")
            .fetchall()))
        report.pending_rows = store.pending_rows(self.adapter.name, self.segment)
        if run.dry_run:
            report.sample = self.sample(run.sample_size)
            return report
        for operation in (REMOVE, ADD):
            if count := self.batch_count(operation):
                self.deliver(operation, self.fresh_batches(operation, count),
                             replayed=False, total=count)
        report.pending_rows = store.pending_rows(self.adapter.name, self.segment)
        store.record_run([
            run.run_id, run.started_at, self.adapter.name, self.segment, run.full,
            report.members, report.eligible, report.skipped[NO_CONSENT],
            report.skipped[ERASED_STATUS], report.skipped[NO_PROFILE],
            report.skipped[NO_IDENTIFIER], report.adds, report.removes, report.accepted,
            report.rejected, report.failed_batches, report.matchable_share])
        return report

    # --- what should be there ----------------------------------------------------------------

    def candidates(self) -> None:
        """Temp table _cand(customer_id, status, fingerprint, matchable, row): one row per
        member; `row` indexes self.payloads."""
        members = self.source.members(self.segment, self.adapter.purpose)
        self.con.execute(f"create or replace temp table _cand {_CANDIDATES_DDL}")
        chunks: list[pa.Array] = []
        offset = 0
        for start in range(0, members.num_rows, CHUNK_ROWS):
            chunk = self.builder.build(members.slice(start, CHUNK_ROWS))
            chunk = chunk.append_column("row", pa.array(
                range(offset, offset + chunk.num_rows), pa.int64()))
            offset += chunk.num_rows
            chunks.append(chunk.column("payload").combine_chunks())
            self.con.register("_cand_chunk", chunk)
            try:
                # The fingerprint covers the layout too: a destination whose keys changed
                # sees every member as changed.
                self.con.execute(
                    "insert into _cand select customer_id, status, "
                    "md5(? || chr(30) || payload), matchable, row from _cand_chunk",
                    [self.builder.layout])
            finally:
                self.con.unregister("_cand_chunk")
        self.payload_chunks = chunks
        del members
        report = self.report
        for status, count, matchable in self.con.execute(
                "select status, count(*), count(*) filter (where matchable) from _cand "
                "group by status").fetchall():
            report.members += count
            if status == ELIGIBLE:
                report.eligible = count
            else:
                report.skipped[status] = count
            if status in (ELIGIBLE, NO_IDENTIFIER):
                report.reachable += count
                report.matchable += matchable

    def plan(self) -> None:
        """Temp table _plan(op, customer_id, reason, fingerprint, row, layout, payload): the
        diff between eligible candidates and what the destination has. Joins compare
        fingerprints; removals carry the payload that was delivered."""
        store = self.store
        self.con.execute(f"""
            create or replace temp table _plan as
            with delivered as (
                select * from ({store.delivered_sql()})
                where destination = $dest and segment = $seg
            ),
            in_flight as (
                select distinct customer_id from {store.inflight}
                where destination = $dest and segment = $seg
            ),
            removes as (
                select d.customer_id, d.fingerprint, d.layout, d.payload,
                    case
                        when _erased.customer_id is not null then '{ERASED_STATUS}'
                        when c.customer_id is null then 'left'
                        when c.status = '{ELIGIBLE}' then 'changed'
                        else c.status
                    end as reason
                from delivered d
                left join _cand c on c.customer_id = d.customer_id
                left join _erased on _erased.customer_id = d.customer_id
                where (c.customer_id is null or c.status <> '{ELIGIBLE}'
                       or ($replace and c.fingerprint <> d.fingerprint))
                  and d.customer_id not in (select customer_id from in_flight)
            ),
            adds as (
                select c.customer_id, c.fingerprint, c.row,
                    case
                        when known.customer_id is null then 'new'
                        when same.customer_id is null then 'changed'
                        else 'resend'
                    end as reason
                from _cand c
                left join (select distinct customer_id from delivered) known
                    on known.customer_id = c.customer_id
                left join (select distinct customer_id, fingerprint from delivered) same
                    on same.customer_id = c.customer_id and same.fingerprint = c.fingerprint
                where c.status = '{ELIGIBLE}'
                  and c.customer_id not in (select customer_id from in_flight)
            )
            select 'remove' as op, customer_id, reason, fingerprint, null::bigint as row,
                layout, payload
            from removes
            union all
            select 'add' as op, customer_id, reason, fingerprint, row, null, null
            from adds
            where reason <> 'resend' or $full
        """, {"dest": self.adapter.name, "seg": self.segment,
              "replace": self.adapter.replace_on_change, "full": self.run.full})
        # The plan in Arrow memory, by customer id; batches are slices of it.
        self.planned = {op: self.con.sql(
            "select customer_id, reason, fingerprint, row, layout, payload from _plan "
            "where op = $op order by customer_id", params={"op": op}).to_arrow_table()
            for op in (REMOVE, ADD)}

    def batch_count(self, operation: str) -> int:
        return -(-self.planned[operation].num_rows // self.adapter.batch_size)

    def planned_rows(self, operation: str, batch_no: int, size: int | None = None
                     ) -> StagedRows:
        """The planned rows of one batch (batch_no-th slice of `size`, default batch size)."""
        size = size or self.adapter.batch_size
        rows = self.planned[operation].slice(batch_no * size, size)
        if operation == ADD:  # additions: today's payload, from Arrow memory
            payloads = self.payloads_of(rows.column("row").to_numpy())
            layouts = [self.builder.layout] * rows.num_rows
        else:
            payloads = rows.column("payload").to_pylist()
            layouts = rows.column("layout").to_pylist()
        return StagedRows(rows.column("customer_id").to_pylist(),
                          rows.column("reason").to_pylist(),
                          rows.column("fingerprint").to_pylist(), layouts, payloads)

    def payloads_of(self, numbers: np.ndarray) -> list[str]:
        """Today's payloads of the candidates with these row numbers, in that order."""
        out: list[str] = [""] * len(numbers)
        chunk_of, index_in = np.divmod(numbers, CHUNK_ROWS)
        for chunk in np.unique(chunk_of):
            where = np.flatnonzero(chunk_of == chunk)
            values = self.payload_chunks[chunk].take(pa.array(index_in[where])).to_pylist()
            for position, value in zip(where.tolist(), values, strict=True):
                out[position] = value
        return out

    def sample(self, size: int) -> list[dict]:
        """A few planned rows with their hashed values; unhashed personal data is masked."""
        pii = {k.name for k in self.adapter.keys if k.pii and not k.hashed}
        sample = []
        for operation in (ADD, REMOVE):
            rows = self.planned_rows(operation, 0, size) if size else None
            if not rows:
                continue
            for cid, reason, layout, payload in zip(rows.customer_ids, rows.reasons,
                                                    rows.layouts, rows.payloads, strict=True):
                values = {k: ("•••" if k in pii and v else v)
                          for k, v in decode(payload, layout).items()}
                sample.append({"operation": operation, "customer_id": cid, "reason": reason,
                               "values": values})
        return sample

    # --- delivery ----------------------------------------------------------------------------

    def fresh_batches(self, operation: str, batches: int) -> Iterator[tuple[Batch, bool]]:
        """Planned batches, each staged (committed) just before it is sent."""
        for batch_no in range(batches):
            rows = self.planned_rows(operation, batch_no)
            batch = self._batch(uuid.uuid4().hex, operation,
                                datetime.now(UTC).replace(tzinfo=None), rows)
            self.store.stage(batch.batch_id, self.run.run_id, batch.created_at,
                             self.adapter.name, self.segment, operation, rows)
            yield batch, all(r == "new" for r in rows.reasons)

    def _batch(self, batch_id: str, operation: str, created_at: datetime,
               rows: StagedRows) -> Batch:
        return Batch(batch_id=batch_id, destination=self.adapter.name, segment=self.segment,
                     operation=operation, created_at=created_at,
                     customer_ids=rows.customer_ids, reasons=rows.reasons,
                     layouts=rows.layouts, payloads=rows.payloads)

    def deliver(self, operation: str, batches: Iterator[tuple[Batch, bool]], replayed: bool,
                total: int | None = None) -> None:
        deferred: list[tuple[Batch, BatchResult, bool]] = []
        with _progress() as progress:
            task = progress.add_task(f"{self.segment} → {self.adapter.name} {operation}",
                                     total=total)
            for batch, all_new in batches:
                if not batch.customer_ids:
                    continue  # every row of an unsettled batch was parked (see replay)
                result = self.adapter.send(batch)
                if self.adapter.deferred and result.status == "accepted":
                    deferred.append((batch, result, all_new))
                else:
                    self.settle(batch, result, replayed, all_new)
                progress.advance(task)
        error = self.adapter.finish(self.segment, operation)
        for batch, result, all_new in deferred:
            if error:
                result = BatchResult("failed", 0, 0, error=error)
            self.settle(batch, result, replayed, all_new)

    def settle(self, batch: Batch, result: BatchResult, replayed: bool, all_new: bool) -> None:
        self.store.settle(self.run.run_id, batch.batch_id, batch.destination, batch.segment,
                          batch.operation, len(batch), result, result.rejected_rows,
                          replayed, replaces_customer=not self.adapter.replace_on_change,
                          all_new=all_new)
        report = self.report
        report.accepted += result.accepted
        report.rejected += result.rejected
        if result.status == "failed":
            report.failed_batches += 1
        elif result.status == "rejected":
            report.rejected_batches += 1
        if result.error:
            message = f"{batch.operation} batch of {len(batch)}: {result.status}: {result.error}"
            report.errors.append(message)
            log.warning("sync %s -> %s: %s", batch.segment, batch.destination, message)

    def replay(self) -> None:
        """Resend the batches an earlier run left unsettled, with their ids and rows."""
        pending = self.store.pending_batches(self.adapter.name, self.segment)
        for operation in (REMOVE, ADD):
            batches = [b for b in pending if b.operation == operation]
            if not batches:
                continue
            if operation == ADD:
                for b in batches:
                    b.rows -= self.store.park_ineligible(b.batch_id, self.run.run_id)
            self.report.replayed_rows += sum(b.rows for b in batches)
            staged = ((self._batch(b.batch_id, operation, b.created_at,
                                   self.store.staged_rows(b.batch_id, operation)), False)
                      for b in batches)
            self.deliver(operation, staged, replayed=True, total=len(batches))


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not console.is_terminal,
                    transient=True)


# --- summary ---------------------------------------------------------------------------------

def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _summary(reports: list[PairReport], run: Run) -> StepSummary:
    title = "sync (dry run: nothing sent)" if run.dry_run else "sync"
    summary = StepSummary(title=title)
    for r in reports:
        parts = [f"members {r.members:,}", f"adds {r.adds:,}", f"removes {r.removes:,}",
                 f"skipped: no consent {r.skipped[NO_CONSENT]:,}"]
        for status, label in ((ERASED_STATUS, "erased"), (NO_PROFILE, "no profile"),
                              (NO_IDENTIFIER, "no identifier")):
            if r.skipped[status]:
                parts.append(f"{label} {r.skipped[status]:,}")
        if not run.dry_run:
            parts += [f"accepted {r.accepted:,}", f"rejected {r.rejected:,}"]
        parts.append(f"matchable {_percent(r.matchable_share)}")
        summary.add(f"{r.segment} → {r.destination}", " · ".join(parts))
        if r.removes_by_reason:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r.removes_by_reason.items()))
            summary.notes.append(f"{r.segment} → {r.destination}: removes by reason: {reasons}")
        if r.replayed_rows:
            summary.notes.append(f"{r.segment} → {r.destination}: resent {r.replayed_rows:,} "
                                 "rows left unsettled by an earlier run")
        for error in r.errors:
            summary.notes.append(f"{r.segment} → {r.destination}: {error}")
        if r.failed_batches:
            summary.ok = False
            summary.notes.append(f"{r.segment} → {r.destination}: {r.failed_batches} batch(es) "
                                 f"failed; {r.pending_rows:,} rows kept for the next run")
        if r.rejected_batches:  # refused as a whole (bad token, bad request): needs a person
            summary.ok = False
        if r.pending_rows and run.dry_run:
            summary.notes.append(f"{r.segment} → {r.destination}: {r.pending_rows:,} rows "
                                 "await resending from an earlier run")
        for row in r.sample:
            values = ", ".join(f"{k}={_short(v)}" for k, v in row["values"].items() if v)
            summary.notes.append(f"sample {r.segment} → {r.destination} {row['operation']} "
                                 f"{row['customer_id']} ({row['reason']}): {values}")
    reachable = sum(r.reachable for r in reports)
    share = sum(r.matchable for r in reports) / reachable if reachable else None
    summary.add("members with a matchable identifier", _percent(share))
    summary.figures = {
        "run_id": run.run_id, "dry_run": run.dry_run, "full": run.full,
        "pairs": [r.figures() for r in reports],
        "adds": sum(r.adds for r in reports), "removes": sum(r.removes for r in reports),
        "accepted": sum(r.accepted for r in reports),
        "rejected": sum(r.rejected for r in reports),
        "failed_batches": sum(r.failed_batches for r in reports),
        "rejected_batches": sum(r.rejected_batches for r in reports),
        "matchable_share": share,
    }
    return summary


def _short(value: str) -> str:
    return value[:16] + "…" if len(value) == 64 else value
