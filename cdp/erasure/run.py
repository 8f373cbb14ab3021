"""`cdp forget`: erase one person everywhere the platform keeps them (GDPR art. 17, KVKK art. 7).

1. Find them (identity tables; an email or phone is normalised first) and count, read only,
   what every place holds: this is all `--dry-run` does.
2. Record the request and its tombstones in the lake's erasure register (the journal: from here
   an interrupted run is finished by running the same command again).
3. Purge, in an order where a crash at any point is finished by a re-run: text artefacts,
   exports and other data files (their search values come from the lake and identity tables,
   which are purged later) -> the warehouse (one transaction, then compacted) -> raw lake,
   quarantine and held-back batches -> landing files.
4. Mark the request done. The next `cdp sync` removes the customers from every destination
   (they are in `identity.erased_customers`); `cdp ingest` drops their re-delivered rows.

Every place is purged against *all* tombstones and erased customer ids, not only this
request's, so a re-run after restoring a backup erases everyone again (`cdp forget --reapply`).
Nothing here prints, logs or stores a personal value: counts, file names and pseudonymous
customer ids only.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cdp import lake
from cdp.config import Settings
from cdp.erasure import datafiles, keys, store
from cdp.erasure.lakefiles import (
    Findings,
    Pass,
    PlaceCount,
    check_anonymisation,
    purge_lake,
    purge_landing,
)
from cdp.erasure.locate import Target, locate, open_warehouse
from cdp.erasure.lock import lake_lock
from cdp.erasure.matcher import RECORD, Tombstones
from cdp.erasure.warehouse import WarehouseCounts, purge_warehouse
from cdp.errors import CdpError
from cdp.summary import StepSummary

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Counts per place, from the counting pass (dry run) or the purging pass."""

    findings: Findings = field(default_factory=Findings)
    warehouse: WarehouseCounts = field(default_factory=WarehouseCounts)
    exports: tuple[int, int] = (0, 0)        # files, rows
    tables: tuple[int, int] = (0, 0)         # files, rows
    text: tuple[int, int] = (0, 0)           # files, occurrences
    unchecked: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def anything(self) -> bool:
        return bool(self.warehouse.changed or self.exports[1] or self.tables[1] or self.text[1]
                    or any(p.rows for p in self.findings.places.values()))


def forget(settings: Settings, customer_ids: list[str] | None = None, email: str | None = None,
           phone: str | None = None, reason: str | None = None,
           requested_by: str | None = None, dry_run: bool = False,
           reapply: bool = False) -> StepSummary:
    """Erase one person, given by customer id(s), email or phone; or, with `reapply`, erase
    every recorded request again (after restoring a backup).

    Returns a summary of what was (or, with `dry_run`, would be) removed, per place; counts
    only. Raises CdpError when the request is ambiguous or names nobody known."""
    given = sum((bool(customer_ids), email is not None, phone is not None))
    if reapply and given:
        raise CdpError("--reapply takes no customer id, email or phone")
    if not reapply and given != 1:
        raise CdpError("give exactly one of --customer-id, --email or --phone")
    check_anonymisation(settings)
    with lake_lock(settings, exclusive=not dry_run):
        return _forget(settings, list(customer_ids or []), email, phone, reason, requested_by,
                       dry_run, reapply)


def _forget(settings: Settings, customer_ids: list[str], email: str | None, phone: str | None,
            reason: str | None, requested_by: str | None, dry_run: bool,
            reapply: bool) -> StepSummary:
    existing = Tombstones.load(settings)
    # A dry run never writes a key: it matches with a throwaway one (no tombstone exists yet).
    key = (existing.key if existing else keys.load_key(settings, create=not dry_run)
           or secrets.token_hex(32).encode())
    requests = store.read_requests(settings)
    if reapply:
        if not requests:
            raise CdpError("no erasure was ever recorded: nothing to reapply")
        target = Target("reapply")
        request = requests[-1]
        mode = "reapply"
    else:
        target = locate(settings, customer_ids, email, phone)
        prior = _prior_requests(settings, requests, target, key, customer_ids)
        pending = [r for r in prior if r.status != "done"]
        if pending:  # an earlier run for this person was interrupted: finish it
            request, mode = pending[-1], "resumed"
        elif target.present or target.records or not prior:
            if target.matched_by == "customer_id" and not target.present and not prior:
                raise CdpError(f"unknown customer id(s) {', '.join(sorted(customer_ids))}: "
                               "not in the identity tables and never erased")
            request = store.Request(
                request_id=f"E{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                requested_at=_now_text(), matched_by=target.matched_by,
                customer_ids=sorted(target.customer_ids), reason=reason,
                requested_by=requested_by)
            mode = "new"
        else:
            request, mode = prior[-1], "already erased"

    digests = _request_digests(key, target)
    tombstones = _combined(settings, key, existing, digests)
    all_ids = {c for r in requests for c in r.customer_ids} | target.customer_ids
    memo: dict[Any, Any] = {}
    planned = _pass(settings, tombstones, request, all_ids, target, False, memo)
    # Rows found in the lake by identifier: their record ids are tombstoned too, so the same
    # rows re-delivered without the identifier are still dropped.
    if planned.findings.records - target.records:
        digests.setdefault(RECORD, set()).update(
            keys.digest(key, RECORD, keys.record_value(s, r))
            for s, r in planned.findings.records)
        tombstones = _combined(settings, key, existing, digests)
        memo.clear()  # more records to match now: the purging pass looks at every file again

    if dry_run:
        return _summary(settings, request, mode, target, planned, digests, dry_run=True)
    if mode in ("resumed", "already erased") and not planned.anything:
        if request.status != "done":
            request.status, request.completed_at = "done", _now_text()
            request.save(settings)
        return _summary(settings, request, mode, target, planned, digests, dry_run=False)

    if mode == "new":
        request.save(settings)
        store.write_tombstones(settings, request.request_id, keys.key_check(key), digests)
        log.info("erasure %s recorded: %d tombstones", request.request_id,
                 sum(len(v) for v in digests.values()))
    elif mode == "resumed" and digests:  # keep what the interrupted run recorded, add the rest
        _, _, per_request = store.read_tombstones(settings)
        merged = {kind: set(values) for kind, values in digests.items()}
        for kind, value in per_request.get(request.request_id, set()):
            merged.setdefault(kind, set()).add(value)
        store.write_tombstones(settings, request.request_id, keys.key_check(key), merged)
    done = _pass(settings, tombstones, request, all_ids, target, True, memo,
                 needles=planned.findings.needles, compact_always=mode == "reapply")
    if mode == "new" or (mode == "resumed" and not request.counts):
        request.counts = _figures(done, digests)
    elif mode != "reapply":  # finishing an interrupted run, or after a restore: keep both
        request.counts.setdefault("later_runs", []).append(
            {"at": _now_text(), **_figures(done, digests)})
    if mode != "reapply":
        request.status, request.completed_at = "done", _now_text()
        request.save(settings)
    log.info("erasure %s done (%s)", request.request_id, mode)
    return _summary(settings, request, mode, target, done, digests, dry_run=False)


def _now_text() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _prior_requests(settings: Settings, requests: list[store.Request], target: Target,
                    key: bytes, customer_ids: list[str]) -> list[store.Request]:
    """Earlier requests for the same person: same customer id, or same tombstoned value."""
    if not requests:
        return []
    wanted = {(kind, keys.digest(key, kind, v))
              for kind, values in target.identifiers.items() for v in values}
    ids = set(customer_ids) | target.customer_ids
    _, _, per_request = store.read_tombstones(settings)
    return [r for r in requests if ids & set(r.customer_ids)
            or wanted & per_request.get(r.request_id, set())]


def _request_digests(key: bytes, target: Target,
                     records: set[tuple[str, str]] | None = None) -> dict[str, set[str]]:
    digests: dict[str, set[str]] = {}
    for kind, values in target.identifiers.items():
        digests.setdefault(kind, set()).update(keys.digest(key, kind, v) for v in values)
    rows = target.records | (records or set())
    if rows:
        digests[RECORD] = {keys.digest(key, RECORD, keys.record_value(s, r)) for s, r in rows}
    return digests


def _combined(settings: Settings, key: bytes, existing: Tombstones | None,
              digests: dict[str, set[str]]) -> Tombstones:
    merged: dict[str, set[str]] = {k: set(v) for k, v in (existing.digests if existing
                                                          else {}).items()}
    for kind, values in digests.items():
        merged.setdefault(kind, set()).update(values)
    return Tombstones(key, merged, settings.default_region)


def _pass(settings: Settings, tombstones: Tombstones, request: store.Request,
          customer_ids: set[str], target: Target, apply: bool, memo: dict[Any, Any],
          needles: set[str] | None = None, compact_always: bool = False) -> Outcome:
    """One pass over every place: count (apply=False) or purge. `memo` carries what the
    counting pass found per file into the purging pass (both run under the lake lock)."""
    out = Outcome()
    run = Pass(settings, tombstones, request.request_id, apply, out.findings, memo=memo)

    @contextmanager
    def timed(stage: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        out.seconds[stage] = round(out.seconds.get(stage, 0.0) + time.perf_counter() - started,
                                   2)

    if not apply:  # counting: the lake first, it supplies search values for the text pass
        with timed("lake"):
            purge_lake(run)
        with timed("landing"):
            purge_landing(run, _loaded(settings))
    search = (needles or set()) | target.needles | out.findings.needles
    with timed("data files"):
        delivered = _delivered_values(settings, customer_ids)
        exports = datafiles.export_dirs(settings)
        files = datafiles.data_files(settings)
        tables = [p for p in files if p.suffix in datafiles.TABULAR]
        export_files = [p for p in tables if datafiles.under(p, exports)]
        other_tables = [p for p in tables if not datafiles.under(p, exports)]
        pattern = datafiles.needle_pattern(search)
        text_files, occurrences, skipped = datafiles.scrub_text(files, pattern, apply, memo)
        out.text = (text_files, occurrences)
        e_files, e_rows, bad_exports = datafiles.purge_tables(
            export_files, datafiles.customer_test(tombstones, customer_ids, delivered), apply,
            memo)
        out.exports = (e_files, e_rows)
        t_files, t_rows, bad_tables = datafiles.purge_tables(
            other_tables, datafiles.customer_test(tombstones, customer_ids), apply, memo)
        out.tables = (t_files, t_rows)
    with timed("warehouse"):
        out.warehouse = purge_warehouse(settings, tombstones, customer_ids,
                                        _erased_rows(settings, request, customer_ids), apply,
                                        compact_always)
    if apply:
        with timed("lake"):
            purge_lake(run)
        with timed("landing"):
            purge_landing(run, _loaded(settings))
    out.unchecked = sorted(set(skipped + bad_exports + bad_tables + out.findings.unchecked))
    log.info("erasure %s pass (%s): %s", request.request_id,
             "purge" if apply else "count", out.seconds)
    return out


def _loaded(settings: Settings) -> dict[str, str]:
    loaded = lake.committed_batches(settings)
    loaded.update(store.landing_aliases(settings))
    return loaded


def _erased_rows(settings: Settings, current: store.Request, customer_ids: set[str]
                 ) -> list[tuple[str, datetime, str, str]]:
    """(customer_id, erased_at, request_id, matched_by) of every erased customer."""
    rows: dict[str, tuple[str, datetime, str, str]] = {}
    for request in [*store.read_requests(settings), current]:
        at = datetime.fromisoformat(request.requested_at)
        for cid in request.customer_ids:
            rows.setdefault(cid, (cid, at, request.request_id, request.matched_by))
    return [rows[c] for c in sorted(rows) if c in customer_ids]


def _delivered_values(settings: Settings, customer_ids: set[str]) -> set[str]:
    """Every value delivered to a destination for these customers (hashed keys mostly), as
    recorded in activation.sync_state: export rows holding them are the customers' rows."""
    from cdp.activation.payload import SEPARATOR

    if not customer_ids:
        return set()
    con = open_warehouse(settings, read_only=True)
    if con is None:
        return set()
    try:
        found = con.execute("select count(*) from information_schema.tables where "
                            "table_schema = 'activation' and table_name = 'sync_state'"
                            ).fetchall()[0][0]
        if not found:
            return set()
        rows = con.execute("select payload from activation.sync_state where customer_id in "
                           "(select unnest(?::varchar[]))", [sorted(customer_ids)]).fetchall()
    finally:
        con.close()
    return {v for (payload,) in rows for v in payload.split(SEPARATOR) if len(v) >= 8}


def _figures(out: Outcome, digests: dict[str, set[str]]) -> dict[str, Any]:
    places = {name: {"files": p.files, "rows_removed": p.rows_removed,
                     "rows_anonymised": p.rows_anonymised}
              for name, p in sorted(out.findings.places.items())}
    return {
        "warehouse_tables": dict(sorted(out.warehouse.tables.items())),
        "other_profiles_scrubbed": out.warehouse.profiles_scrubbed,
        "erased_customers_added": out.warehouse.erased_added,
        "delivered_memberships": out.warehouse.delivered,
        "warehouse_compacted": out.warehouse.compacted,
        "lake": places,
        "exports": {"files": out.exports[0], "rows": out.exports[1]},
        "data_files": {"files": out.tables[0], "rows": out.tables[1]},
        "text_artefacts": {"files": out.text[0], "occurrences": out.text[1]},
        "tombstones": {k: len(v) for k, v in sorted(digests.items())},
        "unchecked_files": list(out.unchecked),
        "seconds": dict(out.seconds),
    }


def _summary(settings: Settings, request: store.Request, mode: str, target: Target,
             out: Outcome, digests: dict[str, set[str]], dry_run: bool) -> StepSummary:
    title = "forget (dry run: nothing changed)" if dry_run else "forget"
    summary = StepSummary(title=title)
    figures = _figures(out, digests)
    figures.update(request_id=request.request_id, mode=mode, dry_run=dry_run,
                   customer_ids=sorted(target.customer_ids or request.customer_ids),
                   matched_by=request.matched_by, no_op=not dry_run and mode != "new"
                   and not out.anything)
    summary.figures = figures
    label = {"new": "new" if not dry_run else "would be recorded",
             "resumed": "resumed (an earlier run was interrupted)",
             "already erased": "already erased", "reapply": "every request reapplied"}[mode]
    summary.add("request", f"{request.request_id if mode != 'new' or not dry_run else '-'} "
                           f"({label})")
    ids = figures["customer_ids"]
    summary.add("customers", ", ".join(ids) if ids else "none in the identity tables")
    summary.add("matched by", request.matched_by)
    t = out.warehouse.tables
    summary.add("identity tables", (
        f"{t.get('identity.identity_records', 0):,} records, "
        f"{t.get('identity.identity_clusters', 0):,} source records, "
        f"{t.get('identity.identity_links', 0):,} links, "
        f"{t.get('identity.golden_profiles', 0):,} golden profiles, "
        f"{t.get('identity.identity_identifiers', 0):,} identifier classes")
        if out.warehouse.present else "no warehouse")
    marts = {k: v for k, v in t.items() if not k.startswith("identity.")}
    summary.add("built marts (deleted now; `cdp build` rebuilds without them)",
                f"{sum(marts.values()):,} rows in {len(marts)} tables")
    if out.warehouse.profiles_scrubbed:
        summary.add("other customers' profiles that carried an erased identifier",
                    out.warehouse.profiles_scrubbed)
    for place, label_text in (("raw", "raw lake"), ("held_back", "held-back batches"),
                              ("quarantine", "quarantine"), ("landing", "landing files")):
        if place == "held_back" and place not in out.findings.places:
            continue
        p = out.findings.places.get(place) or PlaceCount()
        text = f"{p.rows_removed:,} rows removed"
        if p.rows_anonymised:
            text += f", {p.rows_anonymised:,} anonymised (kept for revenue)"
        summary.add(label_text, f"{text} in {p.files:,} files")
    summary.add("exports", f"{out.exports[1]:,} rows in {out.exports[0]:,} files")
    summary.add("other data files", f"{out.tables[1]:,} rows in {out.tables[0]:,} files")
    summary.add("text artefacts", f"{out.text[1]:,} values in {out.text[0]:,} files")
    tomb = {k: len(v) for k, v in digests.items()}
    summary.add("tombstones", f"{sum(v for k, v in tomb.items() if k != RECORD):,} identifiers, "
                              f"{tomb.get(RECORD, 0):,} source records")
    summary.add("destinations", f"{out.warehouse.delivered:,} delivered memberships, removed "
                                "by the next `cdp sync`")
    if out.warehouse.compacted:
        summary.add("warehouse file", "compacted (no deleted value left in free blocks)")
    elif out.warehouse.compact_needed:
        summary.notes.append("the warehouse file was not compacted (this process holds it open"
                             "): deleted values may remain in its free blocks; run "
                             "`cdp forget --reapply` from a new process")
    if target.not_tombstoned:
        summary.notes.append(f"{target.not_tombstoned} identifier(s) of the person are shared "
                             "with other people (or junk) and are not tombstoned; the "
                             "person's records carrying them were removed")
    if out.unchecked:
        summary.ok = False
        summary.notes.append(f"{len(out.unchecked)} file(s) could not be searched and may still "
                             "hold the person: " + ", ".join(out.unchecked[:10]))
    if figures["no_op"]:
        summary.notes.append("nothing left to remove: the erasure is complete")
    elif dry_run:
        summary.notes.append("run without --dry-run to erase")
    return summary
