"""Reading one landing file record by record, whatever its format.

Each reader yields `Incoming` records: the fields as received (or the reason the record could
not even be split into fields) and the record's verbatim text for quarantine. Problems that
concern the whole file (empty, unreadable, header drift) raise `BatchFailure` instead.

Text files are decoded with `errors="surrogateescape"`: a byte that is not valid in the declared
encoding survives as a lone surrogate, so the record it sits in is quarantined as "bad encoding"
with its bytes kept (shown backslash-escaped) instead of stopping the file or being guessed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.config import Channel

UNPARSEABLE = "unparseable line"
BAD_ENCODING = "bad encoding"
FIELD_COUNT = "wrong number of fields"
UNKNOWN_COLUMN = "unknown column"

_UTF8_BOM = codecs.BOM_UTF8
_SURROGATE = re.compile("[\udc80-\udcff]")
# Header names are echoed in error messages only when they look like identifiers: a file that
# lost its header row would otherwise put its first record (PII) into the message.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_OTHER_DELIMITERS = (",", ";", "\t", "|")
PARQUET_BATCH_ROWS = 20_000

# Fields may legitimately be large (a 10 MB field must reach the size rule and be quarantined,
# not crash the reader); the module default of 128 KiB would stop the whole file.
csv.field_size_limit(2**31 - 1)


class BatchFailure(Exception):
    """The file fails as a whole. `rule` and `detail` name the problem, never a data value."""

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(f"{rule}: {detail}" if detail else rule)
        self.rule = rule
        self.detail = detail


@dataclass(slots=True)
class Incoming:
    """One received record.

    `values` holds the channel's declared columns in config order (None where absent), or is
    None when the record could not be split into fields. `bound` is an upper bound on the byte
    size of any field, so the field-size rule only measures fields when it could matter.
    """

    row_number: int
    line_number: int | None
    values: list[Any] | tuple[Any, ...] | None
    raw: str | None = None  # verbatim text; None: render from the values (Parquet)
    problem: tuple[str, str | None, str] | None = None  # (reason, column, detail)
    extra: dict[str, Any] | None = None  # unknown columns of a non-strict channel
    bound: int = 0

    def raw_text(self, names: list[str]) -> str:
        if self.raw is not None:
            return self.raw
        row = dict(zip(names, self.values or (), strict=False))
        row.update(self.extra or {})
        return json.dumps(row, ensure_ascii=False, default=str)


def show_raw(text: str) -> str:
    """Verbatim text for quarantine: undecodable bytes (lone surrogates) become `\\xNN`."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def describe_columns(names: list[str], positions: list[int]) -> str:
    """Unknown header names for a message: identifier-like names, else only their position."""
    return ", ".join(
        name if _IDENTIFIER.match(name) else f"<column {pos}>"
        for name, pos in zip(names, positions, strict=True)
    )


def check_header(names: list[str], channel: Channel, delimiter: str | None = None) -> list[str]:
    """Validate the file's column names against the channel; return the unknown ones.

    Fails the batch on duplicate names, missing required columns (the usual sign of a wrong
    delimiter or a broken export) and unknown columns when the channel is strict (schema drift).
    """
    seen: set[str] = set()
    duplicates = [n for n in names if n in seen or seen.add(n)]
    if duplicates:
        shown = describe_columns(duplicates, [names.index(d) + 1 for d in duplicates])
        raise BatchFailure("duplicate column names in header", shown)
    required = [n for n, c in channel.columns.items() if c.required or n == channel.primary_key]
    missing = [n for n in required if n not in seen]
    if missing:
        detail = f"missing required columns {', '.join(missing)}"
        if delimiter is not None and len(names) == 1:
            found = [d for d in _OTHER_DELIMITERS if d != delimiter and d in names[0]]
            detail += f"; the header is one field: delimiter {delimiter!r} declared"
            if found:
                detail += f", but it looks delimited by {found[0]!r}"
        raise BatchFailure("header lacks required columns", detail)
    unknown = [n for n in names if n not in channel.columns]
    if unknown and channel.strict:
        shown = describe_columns(unknown, [names.index(u) + 1 for u in unknown])
        raise BatchFailure("schema drift: unknown columns on a strict channel", shown)
    return unknown


class HashingReader(io.RawIOBase):
    """A binary file that hashes and counts what is read through it (for progress and to prove
    the bytes parsed are the bytes whose hash became the batch id)."""

    def __init__(self, handle: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._handle = handle
        self._on_bytes = on_bytes
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._handle.readinto(buffer)
        if count:
            self.digest.update(memoryview(buffer)[:count])
            self._on_bytes(count)
        return count or 0


def open_text(path: Path, encoding: str, on_bytes: Callable[[int], None],
              newline: str) -> tuple[io.TextIOWrapper, HashingReader]:
    """The file as text in the declared encoding, without a UTF-8 byte-order mark."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise BatchFailure("unknown encoding in channel config", encoding) from None
    tap = HashingReader(path.open("rb"), on_bytes)
    buffered = io.BufferedReader(tap, buffer_size=1 << 16)
    if buffered.peek(3)[:3] == _UTF8_BOM:
        if codec not in ("utf-8", "utf-8-sig"):
            buffered.close()
            raise BatchFailure("encoding mismatch",
                               f"file starts with a UTF-8 byte-order mark, channel declares "
                               f"{encoding}")
        buffered.read(3)
    elif _looks_like_undeclared_utf8(buffered.peek(1 << 16), codec):
        buffered.close()
        raise BatchFailure("encoding mismatch",
                           f"file is UTF-8 with non-ASCII text, channel declares {encoding}")
    text = io.TextIOWrapper(buffered, encoding=codec, errors="surrogateescape", newline=newline)
    return text, tap


def _looks_like_undeclared_utf8(head: bytes, codec: str) -> bool:
    """True when a channel declares a single-byte encoding but the file's start is UTF-8.

    Non-ASCII text in windows-1254/latin-1 (e.g. `ş` = 0xFE) is almost never valid UTF-8, so
    multi-byte UTF-8 that decodes cleanly means the export changed encoding: loading it as
    declared would garble every Turkish letter without a single decoding error.
    """
    if codec.startswith("utf") or head.isascii():
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


class _LineTap:
    """Feeds lines to csv.reader while keeping them, so each record's verbatim text is known."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._taken: list[str] = []
        self.line_number = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._taken.append(line)
        self.line_number += 1
        return line

    def take(self) -> str:
        raw = "".join(self._taken)
        self._taken.clear()
        return raw.removesuffix("\n").removesuffix("\r")


def _first_bad_field(values: list[str], names: list[str]) -> str | None:
    for name, value in zip(names, values, strict=False):
        if _SURROGATE.search(value):
            return name
    return None


def read_csv(text: io.TextIOWrapper, channel: Channel) -> Iterator[Incoming]:
    """Records of a CSV file; the first non-blank record is the header."""
    tap = _LineTap(iter(text))
    reader = csv.reader(tap, delimiter=channel.delimiter, strict=True)
    header: list[str] | None = None
    while header is None:
        try:
            record = next(reader)
        except StopIteration:
            raise BatchFailure("empty file", "no header row") from None
        except csv.Error:
            raise BatchFailure("unreadable header", "the header row is not valid CSV") from None
        raw = tap.take()
        if record:
            if _SURROGATE.search(raw):
                raise BatchFailure("unreadable header", f"not valid {channel.encoding}")
            header = [name.strip() for name in record]
    unknown = check_header(header, channel, channel.delimiter)
    width = len(header)
    position = {name: i for i, name in enumerate(header)}
    # Optional columns absent from this file point at a null slot appended after the fields.
    picks = [position.get(name, width) for name in channel.columns]
    extra_at = [(name, position[name]) for name in unknown]
    row_number = 0
    while True:
        start_line = tap.line_number + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module's messages describe structure ("unexpected end of data"), not data.
            row_number += 1
            raw = tap.take()
            yield Incoming(row_number, start_line, None, show_raw(raw),
                           (UNPARSEABLE, None, f"not valid CSV ({exc})"))
            continue
        raw = tap.take()
        if not record:
            continue  # a blank line is not a record
        row_number += 1
        if _SURROGATE.search(raw):
            yield Incoming(row_number, start_line, None, show_raw(raw),
                           (BAD_ENCODING, _first_bad_field(record, header),
                            f"not valid {channel.encoding}"))
        elif len(record) != width:
            yield Incoming(row_number, start_line, None, raw,
                           (FIELD_COUNT, None, f"expected {width} fields, got {len(record)}"))
        else:
            record.append(None)  # the null slot
            values = [record[i] for i in picks]
            extra = {name: record[i] for name, i in extra_at} if extra_at else None
            yield Incoming(row_number, start_line, values, raw, extra=extra, bound=4 * len(raw))


def read_jsonl(text: io.TextIOWrapper, channel: Channel) -> Iterator[Incoming]:
    """Records of a JSON-lines file: one JSON object per line; blank lines are skipped."""
    names = list(channel.columns)
    known = set(names)
    row_number = 0
    for line_number, line in enumerate(text, start=1):
        raw = line.removesuffix("\n").removesuffix("\r")
        if not raw.strip():
            continue
        row_number += 1
        if _SURROGATE.search(raw):
            yield Incoming(row_number, line_number, None, show_raw(raw),
                           (BAD_ENCODING, None, f"not valid {channel.encoding}"))
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            yield Incoming(row_number, line_number, None, raw,
                           (UNPARSEABLE, None, f"not valid JSON at char {_position(exc)}"))
            continue
        if not isinstance(record, dict):
            yield Incoming(row_number, line_number, None, raw,
                           (UNPARSEABLE, None, f"a JSON {type(record).__name__}, not an object"))
            continue
        values = [record.get(name) for name in names]
        unknown = record.keys() - known
        if not unknown:
            yield Incoming(row_number, line_number, values, raw, bound=4 * len(raw))
        elif channel.strict:
            first = next(key for key in record if key in unknown)
            yield Incoming(row_number, line_number, None, raw,
                           (UNKNOWN_COLUMN, first, f"{len(unknown)} key(s) not in schema"))
        else:
            extra = {key: value for key, value in record.items() if key in unknown}
            yield Incoming(row_number, line_number, values, raw, extra=extra,
                           bound=4 * len(raw))
    if row_number == 0:
        raise BatchFailure("empty file", "no JSON records")


def _position(exc: ValueError) -> str:
    return str(getattr(exc, "pos", "?"))


def read_parquet(path: Path, channel: Channel,
                 on_fraction: Callable[[float], None]) -> Iterator[Incoming]:
    """Rows of a Parquet file, with Python values; `on_fraction` reports progress (0..1)."""
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise BatchFailure("unreadable parquet", _arrow_message(exc)) from None
    unknown = check_header(list(names), channel)
    present = set(names)
    total = max(handle.metadata.num_rows, 1)
    row_number = 0
    try:
        for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            size = batch.num_rows
            columns = [batch.column(name).to_pylist() if name in present else [None] * size
                       for name in channel.columns]
            extras = {name: batch.column(name).to_pylist() for name in unknown}
            bound = _largest_text(batch)
            for i, values in enumerate(zip(*columns, strict=True)):
                row_number += 1
                extra = {name: column[i] for name, column in extras.items()} if extras else None
                yield Incoming(row_number, None, values, extra=extra, bound=bound)
            on_fraction(row_number / total)
    except (pa.ArrowException, OSError) as exc:
        raise BatchFailure("unreadable parquet",
                           f"after row {row_number}: {_arrow_message(exc)}") from None
    finally:
        handle.close()


def _largest_text(batch: pa.RecordBatch) -> int:
    """The byte length of the longest string/binary value in the batch (0 when none)."""
    longest = 0
    for column in batch.columns:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or \
                pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            lengths = pc.max(pc.binary_length(column)).as_py()
            longest = max(longest, lengths or 0)
        elif not (pa.types.is_primitive(kind) or pa.types.is_decimal(kind)):
            return 2**62  # nested or other types: measure row by row
    return longest


def _arrow_message(exc: Exception) -> str:
    # Arrow's messages describe the file's structure (magic bytes, footer), not its values.
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line[:160]}"
