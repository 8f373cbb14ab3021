"""Purging everything else under the data directory that can hold the person.

- exports of `file` destinations (`{data_dir}/exports/...`): *add* rows of an erased customer
  (by customer id, or by the exact keys delivered to that destination, from
  `activation.sync_state`) are cut out; *remove* rows stay: they are the removal notice the next
  `cdp sync` writes, and carry the hashed keys the receiver matched on.
- other tables on disk (CSV, Parquet; e.g. the generator's truth file, Spark's identity export):
  rows with an erased `customer_id`, or a tombstoned `source` + `source_record_id`.
- text artefacts (JSON, HTML, logs: GX validation results and Data Docs pages, dbt run
  results, resolve and evaluation summaries): every exact occurrence of the person's source
  record ids and identifier values (as received and as normalised) becomes `[erased]`. Names
  are not replaced there (a first name is shared by thousands: replacing it would corrupt other
  people's text), and GX already stores masked samples only (cdp.gates.masking).
Files are rewritten atomically; files without a match are not touched.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.config import Settings
from cdp.erasure.lakefiles import file_key
from cdp.erasure.matcher import Tombstones
from cdp.io import atomic_path

ERASED_TEXT = "[erased]"
TEXT_LIMIT_BYTES = 200 * 1024 * 1024
MIN_NEEDLE = 5
TABULAR = (".csv", ".parquet")


def export_dirs(settings: Settings) -> list[Path]:
    """Folders the `file` destinations of the activation config write to."""
    from cdp.activation.config import FileDestination, expand_path, load_activation_config

    if not settings.activation:
        return []
    config = load_activation_config(settings)
    return [expand_path(d.path, settings) / name for name, d in config.destinations.items()
            if isinstance(d, FileDestination)]


def excluded_roots(settings: Settings) -> list[Path]:
    """Places other passes own (or that hold no per-person data)."""
    from cdp.erasure.keys import key_file

    paths = settings.resolved_paths
    warehouse = paths.warehouse
    return [paths.raw, paths.quarantine, paths.meta / "erasure", paths.meta / "load_log",
            paths.landing, warehouse, warehouse.with_name(warehouse.name + ".wal"),
            key_file(settings)]


def under(path: Path, roots: Iterable[Path]) -> bool:
    text = str(path)
    return any(text == str(root) or text.startswith(str(root) + os.sep) for root in roots)


def data_files(settings: Settings) -> list[Path]:
    root = settings.resolved_paths.data_dir
    if not root.is_dir():
        return []
    skip = excluded_roots(settings)
    return sorted(p for p in root.rglob("*") if p.is_file() and not under(p, skip)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


# --- tables on disk --------------------------------------------------------------------------

RowTest = Callable[[dict[str, list]], np.ndarray]


def purge_tables(paths: list[Path], test: RowTest, apply: bool, memo: dict[Any, Any]
                 ) -> tuple[int, int, list[str]]:
    """Cut the rows `test` flags out of CSV / Parquet files; (files, rows, unreadable).
    `memo` remembers the files without a match between the counting and the purging pass."""
    files = rows = 0
    unreadable: list[str] = []
    for path in paths:
        key = ("table", *file_key(path))
        if memo.get(key) == 0:
            continue
        try:
            hit = memo[key] = _purge_table(path, test, apply)
        except (OSError, ValueError, pa.ArrowException, csv.Error):
            unreadable.append(str(path))
            continue
        if hit:
            files += 1
            rows += hit
    return files, rows, unreadable


def _purge_table(path: Path, test: RowTest, apply: bool) -> int:
    if path.suffix == ".parquet":
        table = pq.ParquetFile(path).read()
        columns = {n: pc.cast(table.column(n), pa.string()).to_pylist()
                   for n in table.column_names
                   if pa.types.is_string(table.schema.field(n).type)
                   or pa.types.is_large_string(table.schema.field(n).type)}
        mask = test(columns)
        hits = int(mask.sum())
        if hits and apply:
            with atomic_path(path) as tmp:
                pq.write_table(table.filter(pa.array(~mask)), tmp)
        return hits
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(iter(lines))
    spans: list[tuple[int, int]] = []
    records: list[list[str]] = []
    start = 0
    for record in reader:
        spans.append((start, reader.line_num))
        records.append(record)
        start = reader.line_num
    if len(records) < 2:
        return 0
    header, body = records[0], records[1:]
    columns = {name: [r[i] if i < len(r) else None for r in body]
               for i, name in enumerate(header)}
    mask = test(columns)
    hits = int(mask.sum())
    if hits and apply:
        drop = {i + 1 for i in np.flatnonzero(mask).tolist()}
        kept = "".join("".join(lines[a:b]) for n, (a, b) in enumerate(spans) if n not in drop)
        with atomic_path(path) as tmp:
            tmp.write_bytes(kept.encode("utf-8", "surrogateescape"))
    return hits


def customer_test(t: Tombstones, customer_ids: set[str],
                  delivered: set[str] | None = None) -> RowTest:
    """Rows of an erased customer: by customer id, tombstoned (source, source_record_id), or
    (exports: `delivered` given) any value the destination received for them; an export's
    removal rows are kept (the notice the receiver acts on)."""
    def test(columns: dict[str, list]) -> np.ndarray:
        size = len(next(iter(columns.values()), []))
        mask = np.zeros(size, dtype=bool)
        if "customer_id" in columns:
            mask |= np.array([v in customer_ids for v in columns["customer_id"]], dtype=bool)
        if "source" in columns and "source_record_id" in columns:
            mask |= np.array([t.record(s, r) for s, r in zip(
                columns["source"], columns["source_record_id"], strict=True)], dtype=bool)
        if delivered is not None:
            for name, values in columns.items():
                if delivered and name not in ("operation", "reason"):
                    mask |= np.array([v in delivered for v in values], dtype=bool)
            if "operation" in columns:
                mask &= np.array([v != "remove" for v in columns["operation"]], dtype=bool)
        return mask
    return test


# --- text artefacts --------------------------------------------------------------------------

def needle_pattern(needles: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for every exact value, longest first, not inside a longer word."""
    usable = sorted({n for n in needles if n and len(n) >= MIN_NEEDLE}, key=len, reverse=True)
    if not usable:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, usable))
                      + r")(?![A-Za-z0-9])")


def scrub_text(paths: list[Path], pattern: re.Pattern[str] | None, apply: bool,
               memo: dict[Any, Any]) -> tuple[int, int, list[str]]:
    """Replace every needle in text files by `[erased]`; (files, occurrences, too large)."""
    files = occurrences = 0
    skipped: list[str] = []
    if pattern is None:
        return 0, 0, skipped
    for path in paths:
        if path.suffix in TABULAR:
            continue
        try:
            key = ("text", *file_key(path))
            if memo.get(key) == 0:
                continue
            if path.stat().st_size > TEXT_LIMIT_BYTES:
                skipped.append(str(path))
                continue
            data = path.read_bytes()
        except OSError:
            skipped.append(str(path))
            continue
        if b"\x00" in data[:8192]:
            continue  # binary (fonts, images, databases)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        new, n = pattern.subn(ERASED_TEXT, text)
        memo[key] = n
        if not n:
            continue
        files += 1
        occurrences += n
        if apply:
            with atomic_path(path) as tmp:
                tmp.write_text(new, encoding="utf-8")
    return files, occurrences, skipped
