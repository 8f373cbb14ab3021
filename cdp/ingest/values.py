"""Turning one received value into its declared type, or saying precisely why not.

A converter takes what a reader delivers (text from CSV; str/int/float/bool/None from JSON;
Python objects from Parquet) and returns the typed value or None. It raises `ValueProblem`
with a reason and a detail that never contains the value itself (values may be PII).
Converters run once per value of every row, so the common case (text) takes the shortest path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from cdp.config import Column

WRONG_TYPE = "wrong type"
MISSING_REQUIRED = "missing required field"

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(18, 2),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

TRUE_WORDS = frozenset({"true", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "n"})
_INTEGER = re.compile(r"^[+-]?\d+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CENT = Decimal("0.01")
_DECIMAL_LIMIT = Decimal(10) ** 16  # DECIMAL(18, 2): 16 digits before the point


class ValueProblem(Exception):
    """A value that cannot become its column's type. `detail` names the rule, never the value."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Converter = Callable[[Any], Any]
# Per type: (parse stripped non-empty text, parse any other non-null object).
Parsers = tuple[Converter, Converter]


def make_converter(column: Column, required: bool) -> Converter:
    """The converter for one declared column; `required` also covers the primary key.

    Empty text is null for every type; text is kept verbatim for strings (spaces included) and
    trimmed for the other types, so "  " is null in an integer column.
    """
    from_text, from_object = _PARSERS[column.type](column)
    is_string = column.type == "string"

    def convert(value: Any) -> Any:
        if type(value) is str:
            if is_string:
                if value:
                    return value
            elif text := value.strip():
                return from_text(text)
        elif value is not None:
            return from_object(value)
        if required:
            raise ValueProblem(MISSING_REQUIRED, "required value is empty or absent")
        return None

    return convert


def _wrong(detail: str) -> ValueProblem:
    return ValueProblem(WRONG_TYPE, detail)


def _string(column: Column) -> Parsers:
    def from_object(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueProblem("bad encoding", "bytes are not valid UTF-8") from None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return str(value)
        if isinstance(value, datetime | date):
            return value.isoformat()
        raise _wrong(f"expected text, got {type(value).__name__}")

    return from_object, from_object


def _integral(value: float | Decimal) -> bool:
    try:
        return value == value and value % 1 == 0  # NaN != NaN
    except (ArithmeticError, ValueError):  # infinities
        return False


def _in_range(number: int) -> int:
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _wrong("integer out of the 64-bit range")
    return number


def _integer(column: Column) -> Parsers:
    def from_text(text: str) -> int:
        if not _INTEGER.match(text):
            raise _wrong("expected an integer")
        return _in_range(int(text))

    def from_object(value: Any) -> int:
        if isinstance(value, bool):
            raise _wrong("expected an integer, got a boolean")
        if isinstance(value, int):
            return _in_range(value)
        if isinstance(value, float | Decimal) and _integral(value):
            return _in_range(int(value))
        raise _wrong("expected an integer")

    return from_text, from_object


def _decimal(column: Column) -> Parsers:
    separator = column.decimal_separator
    grouping = "," if separator == "." else "."
    # Digits, optionally grouped by thousands with the other mark, then the decimal part.
    pattern = re.compile(
        rf"^[+-]?(\d+|\d{{1,3}}(?:{re.escape(grouping)}\d{{3}})+)(?:{re.escape(separator)}\d+)?$"
    )

    def exact(number: Decimal) -> Decimal:
        if not number.is_finite():
            raise _wrong("expected a finite decimal number")
        try:
            cents = number.quantize(_CENT)
        except InvalidOperation:
            raise _wrong("decimal number out of range for DECIMAL(18,2)") from None
        if cents != number:
            raise _wrong("more than 2 decimal places (DECIMAL(18,2) would round it)")
        if abs(cents) >= _DECIMAL_LIMIT:
            raise _wrong("decimal number out of range for DECIMAL(18,2)")
        return cents

    def from_text(text: str) -> Decimal:
        if not pattern.match(text):
            raise _wrong(f"expected a decimal number with separator '{separator}'")
        return exact(Decimal(text.replace(grouping, "").replace(separator, ".")))

    def from_object(value: Any) -> Decimal:
        if isinstance(value, bool):
            raise _wrong("expected a decimal number, got a boolean")
        if isinstance(value, int | Decimal):
            return exact(Decimal(value))
        if isinstance(value, float):
            return exact(Decimal(repr(value)))  # the shortest text that round-trips
        raise _wrong("expected a decimal number")

    return from_text, from_object


def _boolean(column: Column) -> Parsers:
    def from_text(text: str) -> bool:
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _wrong("expected a boolean (true/false, 1/0, yes/no, y/n)")

    def from_object(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _wrong("expected a boolean (true/false, 1/0, yes/no, y/n)")

    return from_text, from_object


def _date(column: Column) -> Parsers:
    pattern = column.format

    def from_text(text: str) -> date:
        try:
            if pattern:
                return datetime.strptime(text, pattern).date()
            return date.fromisoformat(text)
        except ValueError:
            raise _wrong(f"not a date in format {pattern or 'ISO 8601'}") from None

    def from_object(value: Any) -> date:
        if isinstance(value, datetime):
            raise _wrong("expected a date, got a timestamp")
        if isinstance(value, date):
            return value
        raise _wrong("expected a date as text")

    return from_text, from_object


def _naive_utc(stamp: datetime) -> datetime:
    # Stored without zone: values that carry an offset are converted to UTC first.
    if stamp.tzinfo is not None:
        return stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp


def _timestamp(column: Column) -> Parsers:
    pattern = column.format

    def from_text(text: str) -> datetime:
        try:
            if pattern:
                return _naive_utc(datetime.strptime(text, pattern))
            return _naive_utc(datetime.fromisoformat(text))
        except ValueError:
            raise _wrong(f"not a timestamp in format {pattern or 'ISO 8601'}") from None

    def from_object(value: Any) -> datetime:
        if isinstance(value, datetime):
            return _naive_utc(value)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        raise _wrong("expected a timestamp as text")

    return from_text, from_object


_PARSERS: dict[str, Callable[[Column], Parsers]] = {
    "string": _string,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
}
