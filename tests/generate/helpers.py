"""Reading generated landing files back, strictly by what cdp.yaml declares."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cdp.config import Channel, Column, Settings


def channel_files(settings: Settings, channel: Channel) -> list[Path]:
    return sorted(settings.resolved_paths.landing.glob(channel.path))


def parse_value(text: str, column: Column) -> Any:
    """Parse a text field the way the declared type says; raises ValueError when it does not."""
    if text == "":
        return None
    if column.type == "integer":
        return int(text)
    if column.type == "decimal":
        return decimal.Decimal(text.replace(column.decimal_separator, "."))
    if column.type == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text == "true"
    if column.type == "timestamp":
        if column.format:
            return dt.datetime.strptime(text, column.format)
        return dt.datetime.fromisoformat(text)
    if column.type == "date":
        if column.format:
            return dt.datetime.strptime(text, column.format).date()
        return dt.date.fromisoformat(text)
    return text


def read_rows(settings: Settings, channel: Channel) -> Iterator[dict[str, Any]]:
    """Every row of the channel's files, typed; asserts the header / keys match the config."""
    columns = channel.columns
    for path in channel_files(settings, channel):
        if channel.format == "csv":
            with path.open(encoding=channel.encoding, newline="") as handle:
                reader = csv.reader(handle, delimiter=channel.delimiter)
                header = next(reader)
                assert header == list(columns), f"{channel.name}: header differs from cdp.yaml"
                for fields in reader:
                    assert len(fields) == len(header), f"{channel.name}: ragged row"
                    yield {name: parse_value(value, columns[name])
                           for name, value in zip(header, fields, strict=True)}
        elif channel.format == "jsonl":
            with path.open(encoding=channel.encoding) as handle:
                for line in handle:
                    record = json.loads(line)
                    assert set(record) <= set(columns), f"{channel.name}: undeclared keys"
                    row = {}
                    for name, column in columns.items():
                        value = record.get(name)
                        if isinstance(value, str) and column.type != "string":
                            value = parse_value(value, column)
                        elif value is not None and column.type == "decimal":
                            value = decimal.Decimal(str(value))
                        row[name] = value
                    yield row
        else:
            table = pq.read_table(path)
            assert table.schema.names == list(columns), f"{channel.name}: columns differ"
            yield from table.to_pylist()
