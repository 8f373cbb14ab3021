"""Purging the files the platform keeps: raw lake, quarantine (and held-back batches), landing.

Every file holding a match is rewritten atomically (`cdp.io.atomic_path`: write beside, then one
rename), so an interruption leaves each file either as it was or purged, and a re-run purges
the rest. Files without a match are never touched.

- raw lake (`raw/<channel>/...`) and held-back batches (`quarantine/<channel>/gate_failed/...`):
  matching rows are deleted, or, for channels in `erasure.keep_anonymised`, kept with only the
  listed columns (plus lineage) and the primary key replaced by a keyed surrogate `ERASED-…`.
  The load log is left as it was (it holds counts, not data); `purged/` records what each file
  lost, so a batch still reconciles: raw rows = loaded - removed.
- quarantine (`quarantine/<channel>/...`): rejected rows are verbatim text, searched as text;
  matching rows are deleted.
- landing (`landing/...`, the files as channels delivered them): matching records are cut out
  and every other byte is kept (CSV and JSON lines line by line, Parquet row by row). The
  redacted file's new content hash is registered as an alias of the loaded batch, so `cdp ingest`
  still sees the file as loaded.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp import lake
from cdp.config import Channel, Settings
from cdp.erasure import keys, store
from cdp.erasure.matcher import Tombstones
from cdp.errors import CdpError
from cdp.io import atomic_path

log = logging.getLogger(__name__)

LINEAGE = ("_batch_id", "_source_file", "_row_number", "_ingested_at")
SURROGATE_PREFIX = "ERASED-"
_UTF8_BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class PlaceCount:
    files: int = 0
    rows_removed: int = 0
    rows_anonymised: int = 0

    @property
    def rows(self) -> int:
        return self.rows_removed + self.rows_anonymised


@dataclass
class Findings:
    """What the lake and landing passes found (or purged). `records` and `needles` are PII."""

    places: dict[str, PlaceCount] = field(default_factory=dict)
    records: set[tuple[str, str]] = field(default_factory=set)
    needles: set[str] = field(default_factory=set)
    unchecked: list[str] = field(default_factory=list)  # files that could not be searched

    def place(self, name: str) -> PlaceCount:
        return self.places.setdefault(name, PlaceCount())


@dataclass
class Pass:
    """One run over the files: the tombstones, and whether to rewrite or only count."""

    settings: Settings
    tombstones: Tombstones
    request_id: str
    apply: bool
    findings: Findings
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    # What the counting pass found per file, keyed by (path, mtime, size): the purging pass
    # (under the same lock) reuses it instead of matching every file again.
    memo: dict[Any, Any] = field(default_factory=dict)
    # batches (lake file stems) whose raw / quarantine files this pass searched, and matched
    checked: set[str] = field(default_factory=set)
    hit: set[str] = field(default_factory=set)

    @property
    def identifiers(self) -> list[str]:
        return self.settings.identity.identifiers


def check_anonymisation(settings: Settings) -> None:
    """`erasure.keep_anonymised` must keep facts, never the person: a clear error otherwise."""
    for name, kept in settings.erasure.keep_anonymised.items():
        where = f"erasure.keep_anonymised.{name}"
        if name not in settings.channels:
            raise CdpError(f"{where}: no channel named {name!r}")
        channel = settings.channels[name]
        unknown = [c for c in kept if c not in channel.columns]
        identity = sorted(set(kept) & set(channel.identity.values()))
        if unknown:
            raise CdpError(f"{where}: unknown column(s) {unknown}")
        if identity:
            raise CdpError(f"{where}: {identity} identify the person (identity columns) and "
                           "cannot be kept")
        if channel.primary_key in kept:
            raise CdpError(f"{where}: the primary key is replaced by a surrogate, not kept")
        if channel.columns[channel.primary_key].type != "string":
            raise CdpError(f"{where}: anonymising needs a text primary key")
        required = [c for c, col in channel.columns.items()
                    if col.required and c != channel.primary_key and c not in kept]
        if required:
            raise CdpError(f"{where}: required column(s) {required} must be kept (rows "
                           "without them break the staging tests)")


# --- raw lake and quarantine -----------------------------------------------------------------

def lake_files(settings: Settings) -> list[tuple[str, str, Path]]:
    """(place, channel, path) of every Parquet file in raw/ and quarantine/."""
    paths = settings.resolved_paths
    found = []
    for place, root in (("raw", paths.raw), ("quarantine", paths.quarantine)):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.parquet")):
            parts = path.relative_to(root).parts
            if any(p.startswith(".") for p in parts):
                continue  # a write in progress (atomic_path's temporary folder)
            kind = "held_back" if place == "quarantine" and "gate_failed" in parts else place
            found.append((kind, parts[0], path))
    return found


def purge_lake(run: Pass) -> None:
    settings = run.settings
    matchers: dict[str, Callable[[pa.Table], np.ndarray]] = {}
    for place, channel, path in lake_files(settings):
        key = file_key(path)
        run.checked.add(path.stem)
        if key in run.memo and run.memo[key] is None:
            continue  # the counting pass found nothing in this very file
        try:
            table = pq.ParquetFile(path).read()
        except (pa.ArrowException, OSError):
            run.findings.unchecked.append(_relative(path, settings.resolved_paths.lake))
            continue
        config = settings.channels.get(channel)
        if key in run.memo:
            mask = run.memo[key]
        elif "_raw" in table.column_names:  # a quarantine file: verbatim rejected records
            delimiter = config.delimiter if config and config.format == "csv" else None
            mask = _text_mask(run.tombstones, table.column("_raw"), channel, delimiter)
        else:
            if channel not in matchers:
                matchers[channel] = (
                    run.tombstones.for_channel(config, run.identifiers).table if config
                    else run.tombstones.unknown_channel(channel))
            mask = matchers[channel](table)
        hits = int(mask.sum())
        run.memo[key] = mask if hits else None
        if not hits:
            continue
        run.hit.add(path.stem)
        count = run.findings.place(place)
        count.files += 1
        if config is not None and "_raw" not in table.column_names:
            _remember(run.findings, config, table.filter(pa.array(mask)))
        keep = settings.erasure.keep_anonymised.get(channel)
        anonymise = bool(keep) and config is not None and place != "quarantine"
        if anonymise:
            count.rows_anonymised += hits
        else:
            count.rows_removed += hits
        if not run.apply:
            continue
        if anonymise:
            assert config is not None and keep is not None
            new = _anonymised(table, mask, config, keep, run.tombstones.key)
        else:
            new = table.filter(pa.array(~mask))
        relative = _relative(path, settings.resolved_paths.lake)
        store.write_purge(settings, run.request_id, place, channel, path.stem, relative,
                          0 if anonymise else hits, hits if anonymise else 0, run.now)
        with atomic_path(path) as tmp:
            pq.write_table(new, tmp)


def file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _text_mask(tombstones: Tombstones, column: pa.ChunkedArray, source: str,
               delimiter: str | None) -> np.ndarray:
    return tombstones.distinct_mask(column, lambda v: tombstones.text(source, v, delimiter))


def _remember(findings: Findings, channel: Channel, rows: pa.Table) -> None:
    """The source records and raw identifier values of matched raw rows (for tombstones and
    for scrubbing text artefacts)."""
    columns = [channel.primary_key, *channel.identity.values()]
    for name in dict.fromkeys(columns):
        if name not in rows.column_names:
            continue
        values = [v for v in pc.cast(rows.column(name), pa.string()).to_pylist() if v]
        if name == channel.primary_key:
            findings.records.update((channel.name, v) for v in values)
            findings.needles.update(values)
        elif name in _identifier_columns(channel):
            findings.needles.update(v.strip() for v in values)


def _identifier_columns(channel: Channel) -> set[str]:
    kinds = ("email", "phone", "loyalty_id", "login_id", "device_id")
    return {column for kind, column in channel.identity.items() if kind in kinds}


def surrogate(key: bytes, source: str, record_id: str) -> str:
    """The anonymised row's primary key: stable for the same record (a row loaded twice stays
    one order), keyed so it cannot be computed from the order id without the key."""
    value = keys.digest(key, "anonymous", keys.record_value(source, record_id))
    return SURROGATE_PREFIX + value[:20].upper()


def _anonymised(table: pa.Table, mask: np.ndarray, channel: Channel, keep: list[str],
                key: bytes) -> pa.Table:
    hit = pa.array(mask)
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if name in keep or name in LINEAGE:
            columns.append(column)
        elif name == channel.primary_key:
            ids = column.to_pylist()
            columns.append(pa.array(
                [surrogate(key, channel.name, str(v)) if m and v is not None else v
                 for v, m in zip(ids, mask.tolist(), strict=True)], column.type))
        else:
            columns.append(pc.if_else(hit, pa.scalar(None, column.type), column))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --- landing ---------------------------------------------------------------------------------

def landing_files(landing: Path, channel: Channel) -> list[Path]:
    """The channel's landing files, as `cdp ingest` lists them."""
    return sorted(p for p in landing.glob(channel.path)
                  if p.is_file() and not p.name.startswith((".", "_")))


def purge_landing(run: Pass, loaded: dict[str, str]) -> None:
    """Cut matching records out of landing files. `loaded`: content hash -> channel of every
    loaded batch and earlier alias (a redacted loaded file gets an alias).

    Run after `purge_lake` of the same pass: a loaded file whose batch's lake files matched
    nothing holds nothing either (its rows are those files' rows), so it is not parsed, unless
    ingest erased rows from it and could not redact it."""
    settings = run.settings
    landing = settings.resolved_paths.landing
    originals = store.alias_targets(settings)
    erased_at_ingest = {e["batch_id"] for e in lake.read_load_log(settings).to_pylist()
                        if e.get("rows_erased")}
    stale = _lake_purged_after_landing(settings)
    seen: set[Path] = set()
    for channel in settings.channels.values():
        matcher = run.tombstones.for_channel(channel, run.identifiers)
        for path in landing_files(landing, channel):
            if path in seen:
                continue
            seen.add(path)
            relative = _relative(path, landing)
            key = file_key(path)
            try:
                if key not in run.memo and _clean_batch(run, path, originals,
                                                        erased_at_ingest | stale):
                    run.memo[key] = (set(), [])
                if key not in run.memo:
                    run.memo[key] = _landing_matches(path, channel, matcher, run.tombstones)
                drop, values = run.memo[key]
            except _Unreadable:
                run.findings.unchecked.append(f"landing/{relative}")
                continue
            if not drop:
                continue
            count = run.findings.place("landing")
            count.files += 1
            count.rows_removed += len(drop)
            for pk, found in values:
                if pk:
                    run.findings.records.add((channel.name, pk))
                    run.findings.needles.add(pk)
                run.findings.needles.update(found)
            if run.apply:
                _rewrite_landing(run, path, relative, channel, drop, loaded, originals)


class _Unreadable(Exception):
    pass


def _clean_batch(run: Pass, path: Path, originals: dict[str, str], suspect: set[str]) -> bool:
    """True when the file is a loaded batch whose lake files this pass searched in vain, and
    nothing says the file holds more than its lake files: `suspect` batches had rows erased at
    ingest, or lake rows purged after the file was last redacted (an interrupted forget)."""
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    batch = originals.get(content, content)
    if batch in suspect:
        return False
    return batch in run.checked and batch not in run.hit


def _lake_purged_after_landing(settings: Settings) -> set[str]:
    """Batches whose lake files were purged later than their landing file was redacted."""
    lake_at: dict[str, datetime] = {}
    landing_at: dict[str, datetime] = {}
    for purge in store.read_purges(settings).to_pylist():
        seen = landing_at if purge["place"] == "landing" else lake_at
        batch = purge["batch_id"]
        seen[batch] = max(seen.get(batch, purge["purged_at"]), purge["purged_at"])
    return {b for b, at in lake_at.items() if b not in landing_at or at > landing_at[b]}


def _landing_matches(path: Path, channel: Channel, matcher: Any, tombstones: Tombstones
                     ) -> tuple[set[int], list[tuple[str | None, list[str]]]]:
    """Line numbers (CSV, JSON lines) or row numbers (Parquet) of matching records, and the
    primary key and identifier values of each."""
    from cdp.ingest.readers import BatchFailure, open_text, read_csv, read_jsonl, read_parquet

    drop: set[int] = set()
    values: list[tuple[str | None, list[str]]] = []
    identifier_at = [list(channel.columns).index(c) for c in _identifier_columns(channel)]
    try:
        if channel.format == "parquet":
            records = read_parquet(path, channel, lambda f: None)
            for record in records:
                if matcher.incoming(record):
                    drop.add(record.row_number)
                    values.append(_record_values(record, matcher, identifier_at))
            return drop, values
        newline = "" if channel.format == "csv" else "\n"
        text, _ = open_text(path, channel.encoding, lambda n: None, newline)
        with text:
            reader = read_csv if channel.format == "csv" else read_jsonl
            for record in reader(text, channel):
                if matcher.incoming(record):
                    span = len(_LINE_BREAK.findall(record.raw or "")) + 1
                    drop.update(range(record.line_number, record.line_number + span))
                    values.append(_record_values(record, matcher, identifier_at))
        return drop, values
    except BatchFailure:
        if channel.format == "parquet":
            raise _Unreadable from None
    except OSError:
        raise _Unreadable from None
    # A file ingest refuses as a whole (bad header, wrong encoding): search it line by line.
    delimiter = channel.delimiter if channel.format == "csv" else None
    try:
        lines = _decoded_lines(path, channel)[1]
    except (LookupError, OSError):
        raise _Unreadable from None
    drop = {n for n, line in enumerate(lines, start=1)
            if tombstones.text(channel.name, line, delimiter)}
    return drop, [(None, []) for _ in drop]


def _record_values(record: Any, matcher: Any, identifier_at: list[int]
                   ) -> tuple[str | None, list[str]]:
    if record.values is None:
        return None, []
    pk = matcher.key_text(record.values[matcher.pk_index])
    found = [str(record.values[i]).strip() for i in identifier_at
             if record.values[i] not in (None, "")]
    return pk, found


def _decoded_lines(path: Path, channel: Channel) -> tuple[bool, list[str]]:
    """(has a UTF-8 BOM, lines with their endings), split as the ingest readers split them."""
    data = path.read_bytes()
    bom = data.startswith(_UTF8_BOM)
    codec = codecs.lookup(channel.encoding).name
    text = data[len(_UTF8_BOM) if bom else 0:].decode(codec, "surrogateescape")
    newline = "" if channel.format == "csv" else "\n"
    return bom, io.StringIO(text, newline=newline).readlines()


def _rewrite_landing(run: Pass, path: Path, relative: str, channel: Channel, drop: set[int],
                     loaded: dict[str, str], originals: dict[str, str] | None = None) -> None:
    original = hashlib.sha256(path.read_bytes()).hexdigest()
    batch = (originals or {}).get(original, original)  # a file redacted before: its batch
    if channel.format == "parquet":
        table = pq.ParquetFile(path).read()
        keep = np.ones(table.num_rows, dtype=bool)
        keep[[n - 1 for n in drop]] = False
        buffer = io.BytesIO()
        pq.write_table(table.filter(pa.array(keep)), buffer)
        data = buffer.getvalue()
    else:
        bom, lines = _decoded_lines(path, channel)
        codec = codecs.lookup(channel.encoding).name
        kept = "".join(line for n, line in enumerate(lines, start=1) if n not in drop)
        data = (_UTF8_BOM if bom else b"") + kept.encode(codec, "surrogateescape")
    new_hash = hashlib.sha256(data).hexdigest()
    if original in loaded:
        # Before the swap: from now on the redacted file counts as the loaded batch.
        store.write_alias(run.settings, new_hash, channel.name, batch, relative,
                          run.request_id)
        loaded[new_hash] = channel.name
    store.write_purge(run.settings, run.request_id, "landing", channel.name, batch,
                      relative, len(drop), 0, run.now)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def redact_delivered(settings: Settings, tombstones: Tombstones, channel: Channel, path: Path,
                     batch_id: str) -> int:
    """After `cdp ingest` loaded a file and dropped erased records from it: cut those records
    out of the landing file too (aliasing its new hash to the loaded batch). Returns how many
    records were cut."""
    landing = settings.resolved_paths.landing
    matcher = tombstones.for_channel(channel, settings.identity.identifiers)
    relative = _relative(path, landing)
    try:
        drop, _ = _landing_matches(path, channel, matcher, tombstones)
        if drop:
            run = Pass(settings, tombstones, "ingest", True, Findings())
            _rewrite_landing(run, path, relative, channel, drop, {batch_id: channel.name})
    except (_Unreadable, OSError) as exc:  # e.g. a read-only landing mount: the lake is clean
        log.warning("erased records were not loaded from %s but could not be cut from the "
                    "landing file (%s); run `cdp forget --reapply`", relative,
                    type(exc).__name__)
        return 0
    return len(drop)
