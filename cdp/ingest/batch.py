"""One landing file = one batch: read, validate every record, stage raw + quarantine files.

Staging happens outside the lake; `cdp.ingest.runner` moves the staged files into the lake
only when the batch as a whole passed. Each received record ends up in exactly one of the two
staged files, so rows received = rows loaded + rows quarantined by construction (+ rows erased:
records of a person erased by `cdp forget`, dropped before validation and written nowhere).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdp.config import Channel
from cdp.ingest.readers import (
    BatchFailure,
    Incoming,
    open_text,
    read_csv,
    read_jsonl,
    read_parquet,
)
from cdp.ingest.values import ARROW_TYPES, ValueProblem, make_converter
from cdp.ingest.writer import ChunkedParquetWriter
from cdp.io import sha256_file

FIELD_TOO_LARGE = "field too large"
DUPLICATE_KEY = "duplicate primary key in batch"

LINEAGE = [
    pa.field("_batch_id", pa.string()),
    pa.field("_source_file", pa.string()),
    pa.field("_row_number", pa.int64()),
    pa.field("_ingested_at", pa.timestamp("us")),
]
# Unknown columns of a non-strict channel, kept as a JSON object so nothing received is lost
# while every raw file of a channel keeps the same schema.
EXTRA = pa.field("_extra", pa.string())

QUARANTINE_SCHEMA = pa.schema([
    pa.field("_raw", pa.string()),
    pa.field("_reason", pa.string()),
    pa.field("_column", pa.string()),
    pa.field("_detail", pa.string()),
    *LINEAGE[:3],
    pa.field("_line_number", pa.int64()),
    LINEAGE[3],
])


def raw_schema(channel: Channel) -> pa.Schema:
    """Native columns typed per config, then `_extra`, then the lineage columns."""
    native = [pa.field(name, ARROW_TYPES[col.type]) for name, col in channel.columns.items()]
    return pa.schema([*native, EXTRA, *LINEAGE])


# Lineage with one value per file: written as constants, not carried row by row.
_PER_FILE = ("_batch_id", "_source_file", "_ingested_at")


@dataclass
class StagedBatch:
    """A batch that passed: its staged files and its counts, ready to be committed."""

    channel: str
    file: str  # relative to the landing directory
    batch_id: str
    file_bytes: int
    ingested_at: datetime
    rows_received: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_erased: int = 0  # dropped: a tombstoned person's (cdp forget), values never written
    reasons: Counter[str] = field(default_factory=Counter)
    raw_file: Path | None = None
    quarantine_file: Path | None = None
    seconds: float = 0.0


def stage_batch(
    path: Path,
    relative: str,
    channel: Channel,
    batch_id: str,
    ingested_at: datetime,
    staging: Path,
    max_field_bytes: int,
    max_quarantine_share: float,
    on_bytes: Callable[[int], None] = lambda n: None,
    erased: Callable[[Incoming], bool] | None = None,
) -> StagedBatch:
    """Validate one file into `staging/raw.parquet` and `staging/quarantine.parquet`.

    `erased` says whether a record belongs to an erased person (cdp.erasure tombstones): such
    records are counted in `rows_erased` and written nowhere, so received = loaded +
    quarantined + erased. Raises `BatchFailure` when the file fails as a whole; the caller then
    discards `staging`.
    """
    started = time.perf_counter()
    size = path.stat().st_size
    if size == 0:
        raise BatchFailure("empty file", "0 bytes")
    batch = StagedBatch(channel.name, relative, batch_id, size, ingested_at)
    constants = dict(zip(_PER_FILE, (batch_id, relative, ingested_at), strict=True))
    raw = ChunkedParquetWriter(staging / "raw.parquet", raw_schema(channel), constants)
    quarantine = ChunkedParquetWriter(staging / "quarantine.parquet", QUARANTINE_SCHEMA,
                                      constants)
    try:
        with _RecordSource(path, channel, size, batch_id, on_bytes) as records:
            _validate(records, channel, batch, raw, quarantine, max_field_bytes, erased)
    except OSError as exc:
        raise BatchFailure("unreadable file", type(exc).__name__) from None
    finally:
        loaded, rejected = raw.close(), quarantine.close()
    batch.raw_file = raw.path if loaded else None
    batch.quarantine_file = quarantine.path if rejected else None
    received, rejected_rows = batch.rows_received, batch.rows_quarantined
    if received and rejected_rows / received > max_quarantine_share:
        top = ", ".join(f"{reason} ({n})" for reason, n in batch.reasons.most_common(3))
        raise BatchFailure(
            "quarantine share above max_quarantine_share",
            f"{rejected_rows} of {received} rows rejected ({rejected_rows / received:.0%} > "
            f"{max_quarantine_share:.0%}); most common: {top}",
        )
    batch.seconds = time.perf_counter() - started
    return batch


class _RecordSource:
    """Context manager yielding the file's records; checks on exit that the bytes parsed are
    the bytes hashed into the batch id (a file still being written fails instead of loading
    half of it under the wrong id)."""

    def __init__(self, path: Path, channel: Channel, size: int, batch_id: str,
                 on_bytes: Callable[[int], None]) -> None:
        self.path, self.channel, self.size, self.batch_id = path, channel, size, batch_id
        self.on_bytes = on_bytes
        self._text: Any = None
        self._tap: Any = None

    def __enter__(self) -> Iterator[Incoming]:
        channel = self.channel
        if channel.format == "parquet":
            done = [0]

            def on_fraction(fraction: float) -> None:
                target = int(self.size * fraction)
                self.on_bytes(target - done[0])
                done[0] = target

            return read_parquet(self.path, channel, on_fraction)
        newline = "" if channel.format == "csv" else "\n"  # csv needs "" for quoted newlines
        self._text, self._tap = open_text(self.path, channel.encoding, self.on_bytes, newline)
        reader = read_csv if channel.format == "csv" else read_jsonl
        return reader(self._text, channel)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._text is not None:
            self._text.close()
        if exc_type is not None:
            return
        digest = (self._tap.digest.hexdigest() if self._tap is not None
                  else sha256_file(self.path))
        if digest != self.batch_id:
            raise BatchFailure("file changed while being read",
                               "its content no longer matches the batch id; retry when the "
                               "delivery is complete")


def _validate(records: Iterator[Incoming], channel: Channel, batch: StagedBatch,
              raw: ChunkedParquetWriter, quarantine: ChunkedParquetWriter,
              max_field_bytes: int, erased: Callable[[Incoming], bool] | None = None) -> None:
    names = list(channel.columns)
    key_index = names.index(channel.primary_key)
    converters = [
        make_converter(col, col.required or name == channel.primary_key)
        for name, col in channel.columns.items()
    ]
    pairs = list(zip(names, converters, strict=True))
    # Non-empty text in a string column is kept verbatim: skip the call for the common case.
    plans = [(convert, col.type == "string") for convert, col in
             zip(converters, channel.columns.values(), strict=True)]
    first_row_of_key: dict[Any, int] = {}
    for record in records:
        batch.rows_received += 1
        if erased is not None and erased(record):  # before validation: never quarantined
            batch.rows_erased += 1
            continue
        problem = record.problem
        values = record.values
        if problem is None and record.bound > max_field_bytes:
            problem = _size_check(record, names, max_field_bytes)
        if problem is None:
            try:
                row = [
                    value if text and value and type(value) is str else convert(value)
                    for (convert, text), value in zip(plans, values, strict=True)
                ]
            except ValueProblem:
                problem = _first_problem(pairs, values)
        if problem is None:
            first = first_row_of_key.setdefault(row[key_index], record.row_number)
            if first != record.row_number:
                problem = (DUPLICATE_KEY, channel.primary_key, f"first seen in row {first}")
        if problem is None:
            extra = (json.dumps(record.extra, ensure_ascii=False, default=str)
                     if record.extra else None)
            row += (extra, record.row_number)
            raw.add(tuple(row), len(record.raw) if record.raw else 0)
            batch.rows_loaded += 1
        else:
            reason, column, detail = problem
            text = record.raw_text(names)
            quarantine.add((text, reason, column, detail, record.row_number,
                            record.line_number), len(text))
            batch.rows_quarantined += 1
            batch.reasons[reason] += 1


def _first_problem(pairs: list[tuple[str, Any]], values: Any) -> tuple[str, str, str]:
    """Which column failed and why (the slow path, only for rejected rows)."""
    for (name, convert), value in zip(pairs, values, strict=True):
        try:
            convert(value)
        except ValueProblem as bad:
            return bad.reason, name, bad.detail
    raise AssertionError("a converter failed once and then passed")  # pragma: no cover


def _size_check(record: Incoming, names: list[str], limit: int) -> tuple[str, str, str] | None:
    """A field over `limit` bytes (UTF-8) quarantines its row."""
    fields = list(zip(names, record.values or (), strict=False))
    fields += list((record.extra or {}).items())
    for name, value in fields:
        if isinstance(value, str | bytes) and len(value) * 4 > limit:
            size = len(value) if isinstance(value, bytes) else len(
                value.encode("utf-8", "surrogateescape"))
            if size > limit:
                return FIELD_TOO_LARGE, name, f"field is over {limit:,} bytes"
    return None
