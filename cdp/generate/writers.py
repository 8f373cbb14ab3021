"""Writing generated rows as channels deliver them: CSV (any encoding, delimiter, decimal
separator, date format from cdp.yaml), JSON lines and Parquet, in event-time order.

Rows are spooled per channel and sorted by event time (an export is in time order, not in the
order people were simulated). Beyond a budget the spool spills sorted runs to temporary files and
merges them, so memory stays flat for any population size.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import heapq
import json
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from unidecode import unidecode

from cdp.config import Channel, Column
from cdp.errors import CdpError

Entry = tuple[str, str, tuple[Any, ...], str]  # (event time ISO, primary key, values, entity)
_PICKLE_BATCH = 4096


class Spool:
    """Collects a channel's rows; yields them sorted by (event time, primary key)."""

    def __init__(self, channel: Channel, budget: int, workdir: Path) -> None:
        self.channel = channel
        self.columns = list(channel.columns)
        self.known = set(self.columns)
        self.event_time = channel.event_time
        self.budget = budget
        self.workdir = workdir
        self.buffer: list[Entry] = []
        self.runs: list[Path] = []
        self.count = 0

    def add(self, row: dict[str, Any], entity_id: str) -> None:
        if not row.keys() <= self.known:
            unknown = sorted(set(row) - self.known)[0]
            raise CdpError(
                f"channel {self.channel.name}: the generator writes column '{unknown}', which "
                "cdp.yaml does not declare for it; declare the column or drop it")
        values = tuple(map(row.get, self.columns))
        # ISO text sorts like the value itself and mixes dates, datetimes and gaps safely.
        when = row.get(self.event_time) if self.event_time else None
        key = when.isoformat() if when is not None else ""
        self.buffer.append((key, str(row[self.channel.primary_key]), values, entity_id))
        self.count += 1
        if len(self.buffer) >= self.budget:
            self._spill()

    def _spill(self) -> None:
        self.buffer.sort(key=_sort_key)
        path = self.workdir / f"{self.channel.name}.{len(self.runs)}.run"
        with path.open("wb") as handle:
            for start in range(0, len(self.buffer), _PICKLE_BATCH):
                pickle.dump(self.buffer[start:start + _PICKLE_BATCH], handle,
                            protocol=pickle.HIGHEST_PROTOCOL)
        self.runs.append(path)
        self.buffer = []

    def sorted(self) -> Iterator[Entry]:
        if not self.runs:
            self.buffer.sort(key=_sort_key)
            yield from self.buffer
            return
        if self.buffer:
            self._spill()
        yield from heapq.merge(*(_read_run(p) for p in self.runs), key=_sort_key)


def _sort_key(entry: Entry) -> tuple[str, str]:
    return (entry[0], entry[1])


def _read_run(path: Path) -> Iterator[Entry]:
    with path.open("rb") as handle:
        while True:
            try:
                batch = pickle.load(handle)
            except EOFError:
                return
            yield from batch


# --- value rendering ------------------------------------------------------------------------

_PYTHON_TYPES: dict[str, Any] = {
    "string": str, "integer": int, "decimal": (int, float), "boolean": bool,
    "date": dt.date, "timestamp": dt.datetime,
}


def _check(channel: Channel, name: str, column: Column, value: Any) -> None:
    """Generated values must already have the declared type: the files stay clean."""
    ok = isinstance(value, _PYTHON_TYPES[column.type])
    if (column.type == "integer" and isinstance(value, bool)) or (
            column.type == "date" and isinstance(value, dt.datetime)):
        ok = False
    if not ok:
        raise CdpError(f"channel {channel.name}, column {name}: generated a "
                       f"{type(value).__name__} where cdp.yaml declares {column.type}")


_EXACT = {"string": str, "integer": int, "decimal": float, "boolean": bool, "date": dt.date,
          "timestamp": dt.datetime}


def text_value(value: Any, column: Column) -> str:
    """A value as a text field: dates by the column's format (ISO by default), decimals with the
    column's separator, booleans as true/false."""
    if value is None:
        return ""
    if column.type == "timestamp":
        return value.strftime(column.format) if column.format else value.isoformat(
            timespec="seconds")
    if column.type == "date":
        return value.strftime(column.format) if column.format else value.isoformat()
    if column.type == "decimal":
        return f"{value:.2f}".replace(".", column.decimal_separator)
    if column.type == "boolean":
        return "true" if value else "false"
    return str(value)


def _encodable(text: str, encoding: str) -> str:
    """Characters the file's encoding cannot hold are transliterated, as legacy systems do."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return "".join(ch if _can_encode(ch, encoding) else unidecode(ch) for ch in text)


def _can_encode(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


class ChannelWriter:
    """Writes one channel's sorted rows to `path` in the channel's declared format."""

    def __init__(self, channel: Channel, path: Path) -> None:
        self.channel = channel
        self.path = path
        self.columns = list(channel.columns.items())
        self.required = [i for i, (_, c) in enumerate(self.columns) if c.required]
        self._exact = [_EXACT[c.type] for _, c in self.columns]
        self._handle: IO[str] | None = None
        self._csv: Any = None
        self._parquet: pq.ParquetWriter | None = None
        self._batch: list[tuple[Any, ...]] = []
        utf8 = channel.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        self._recode = not utf8
        if channel.format == "csv":
            self._handle = path.open("w", encoding=channel.encoding, newline="")
            # Legacy Windows exports end lines with CRLF; modern ones with LF.
            terminator = "\n" if utf8 else "\r\n"
            self._csv = csv.writer(self._handle, delimiter=channel.delimiter,
                                   lineterminator=terminator, quoting=csv.QUOTE_MINIMAL)
            self._csv.writerow(name for name, _ in self.columns)
        elif channel.format == "jsonl":
            self._handle = path.open("w", encoding=channel.encoding, newline="\n")
        else:
            self._schema = pa.schema([(name, _arrow_type(c)) for name, c in self.columns])
            self._parquet = pq.ParquetWriter(path, self._schema, compression="snappy")

    def write(self, values: tuple[Any, ...], omit_nulls: bool = False) -> None:
        for i in self.required:
            if values[i] is None:
                raise CdpError(f"channel {self.channel.name}: generated no value for required "
                               f"column {self.columns[i][0]}")
        for value, exact, (name, column) in zip(values, self._exact, self.columns, strict=True):
            if value is not None and type(value) is not exact:
                _check(self.channel, name, column, value)
        if self._csv is not None:
            fields = [text_value(v, c) for v, (_, c) in zip(values, self.columns, strict=True)]
            if self._recode:
                fields = [_encodable(f, self.channel.encoding) for f in fields]
            self._csv.writerow(fields)
        elif self._handle is not None:
            record = {}
            for (name, column), value in zip(self.columns, values, strict=True):
                if value is None and omit_nulls:
                    continue
                if column.type in ("timestamp", "date") and value is not None:
                    value = text_value(value, column)
                elif column.type == "decimal" and value is not None:
                    value = round(float(value), 2)
                record[name] = value
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self._batch.append(values)
            if len(self._batch) >= 50_000:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        if not self._batch or self._parquet is None:
            return
        columns = list(zip(*self._batch, strict=True))
        arrays = []
        for col, field in zip(columns, self._schema, strict=True):
            values = list(col)
            if pa.types.is_decimal(field.type):  # Arrow wants Decimal objects, not floats
                values = [None if v is None else decimal.Decimal(f"{v:.2f}") for v in values]
            arrays.append(pa.array(values, type=field.type))
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._batch = []

    def close(self) -> None:
        if self._parquet is not None:
            self._flush_parquet()
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()


def _arrow_type(column: Column) -> pa.DataType:
    return {
        "string": pa.string(), "integer": pa.int64(), "decimal": pa.decimal128(18, 2),
        "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    }[column.type]


class TruthWriter:
    """source, source_record_id, entity_id for every generated row (UTF-8 CSV)."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._handle, lineterminator="\n")
        self._csv.writerow(["source", "source_record_id", "entity_id"])
        self.count = 0

    def write(self, source: str, record_id: str, entity_id: str) -> None:
        self._csv.writerow([source, record_id, entity_id])
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def temp_workdir(parent: Path) -> tempfile.TemporaryDirectory[str]:
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".generate-", dir=parent)
