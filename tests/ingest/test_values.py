"""Value conversion rules, one type at a time (the rules the row-level quarantine relies on)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from cdp.config import Column
from cdp.ingest.values import MISSING_REQUIRED, WRONG_TYPE, ValueProblem, make_converter


def convert(value, required: bool = False, **column):
    return make_converter(Column(**column), required)(value)


def rejects(value, reason: str = WRONG_TYPE, required: bool = False, **column) -> str:
    with pytest.raises(ValueProblem) as caught:
        convert(value, required, **column)
    assert caught.value.reason == reason
    return caught.value.detail


@pytest.mark.parametrize(("text", "expected"), [
    ("12.5", Decimal("12.50")), ("-3", Decimal("-3.00")), ("1,234.50", Decimal("1234.50")),
    (" 7.10 ", Decimal("7.10")), (19.99, Decimal("19.99")), (5, Decimal("5.00")),
])
def test_decimals_with_a_point(text, expected) -> None:
    assert convert(text, type="decimal") == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("12,5", Decimal("12.50")), ("1.234.567,89", Decimal("1234567.89")),
    ("-0,01", Decimal("-0.01")),
])
def test_decimals_with_a_comma(text, expected) -> None:
    assert convert(text, type="decimal", decimal_separator=",") == expected


@pytest.mark.parametrize("text", ["12.345", "1e3", "12,5", "1.2.3", "abc", "1,23.4", "NaN"])
def test_decimals_that_would_be_guessed_or_rounded_are_rejected(text) -> None:
    rejects(text, type="decimal")


def test_decimal_detail_never_contains_the_value() -> None:
    assert "98765" not in rejects("98765.4321", type="decimal")
    rejects(float("nan"), type="decimal")
    rejects(Decimal("1e17"), type="decimal")  # beyond DECIMAL(18,2)


def test_integers() -> None:
    assert convert(" 42 ", type="integer") == 42
    assert convert(3.0, type="integer") == 3
    for bad in ["4.5", "1e3", "12a", True, 4.5, str(2**63), float("inf")]:
        rejects(bad, type="integer")


def test_dates_and_timestamps_iso_and_declared_formats() -> None:
    assert convert("2024-02-29", type="date") == date(2024, 2, 29)
    assert convert("29/02/2024", type="date", format="%d/%m/%Y") == date(2024, 2, 29)
    rejects("2023-02-29", type="date")
    rejects("2024-02-29T10:00:00", type="date")
    assert convert("2024-01-05T10:00:00Z", type="timestamp") == datetime(2024, 1, 5, 10)
    assert convert("2024-01-05 13:00:00+03:00", type="timestamp") == datetime(2024, 1, 5, 10)
    assert convert("05.01.2024 10:30", type="timestamp", format="%d.%m.%Y %H:%M") == datetime(
        2024, 1, 5, 10, 30)
    assert "%d.%m.%Y" in rejects("2024-01-05T10:30", type="timestamp", format="%d.%m.%Y %H:%M")
    rejects(1704448800, type="timestamp")  # epoch numbers are not guessed


def test_strings_are_verbatim_and_only_empty_is_null() -> None:
    assert convert("  padded  ") == "  padded  "
    assert convert("") is None
    assert convert(5551234) == "5551234"
    rejects({"nested": 1})


def test_required_values() -> None:
    rejects("", MISSING_REQUIRED, required=True)
    rejects(None, MISSING_REQUIRED, required=True, type="integer")
    rejects("   ", MISSING_REQUIRED, required=True, type="timestamp")
    assert convert("   ", type="integer") is None
