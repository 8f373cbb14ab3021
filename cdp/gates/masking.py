"""Masking of sample values, so gate messages and Data Docs never carry raw PII.

`a.yilmaz@gmail.com` -> `a***@gmail.com`, `+905321234567` -> `+90532*****67`, `Ayşe` -> `A***`.
A value is masked when its column is marked PII (`meta.pii` on the expectation) or when it looks
like an email or a phone number wherever it appears (belt and braces: a mis-marked column still
leaks nothing). Numbers, dates and short codes of non-PII columns (row numbers, segment names,
customer ids) are kept: they are what a person needs to find the problem.
"""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"^\s*([^@\s]*)@(\S*)\s*$")
_DIGIT = re.compile(r"\d")
# Only phone characters: ids with letters (orders, customers, uuids) are not phone numbers.
_PHONE_LIKE = re.compile(r"^[\d\s+().\-/]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\b")
# Result keys of a GX validation result that hold sample values of the expectation's column.
_VALUE_LISTS = ("partial_unexpected_list", "unexpected_list")
_COUNT_LISTS = ("partial_unexpected_counts", "unexpected_counts")
_INDEX_LISTS = ("partial_unexpected_index_list", "unexpected_index_list")


def mask_value(value: Any, pii: bool = False) -> Any:
    """The value with personal data masked; non-PII values pass unchanged unless they look like
    an email or a phone number."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _mask_text(value, pii)
    if pii:
        return "***"  # a birth date, a numeric card number...
    return value


def _mask_text(text: str, pii: bool) -> str:
    if email := _EMAIL.match(text):
        user, domain = email.groups()
        return f"{user[:1]}***@{domain}"
    digits = _DIGIT.findall(text)
    if len(digits) >= 7 and _PHONE_LIKE.match(text) and not _ISO_DATE.match(text):
        head = "+" if text.strip().startswith("+") else ""
        return f"{head}{''.join(digits[:5])}{'*' * (len(digits) - 7)}{''.join(digits[-2:])}"
    if not pii:
        return text
    if not text.strip():
        return text  # an empty value is the finding itself, and holds nothing
    return f"{text.strip()[:1]}***"


def mask_result(result: dict[str, Any], column: str | None, pii: bool) -> dict[str, Any]:
    """A copy of one expectation's `result` dict with every sample value masked.

    `column` is the expectation's column: in index lists (rows given by their index columns)
    only that column's value is PII; the index columns themselves are chosen to be safe.
    """
    masked = dict(result)
    for key in _VALUE_LISTS:
        if isinstance(masked.get(key), list):
            masked[key] = [mask_value(v, pii) for v in masked[key]]
    for key in _COUNT_LISTS:
        if isinstance(masked.get(key), list):
            masked[key] = [{**item, "value": mask_value(item.get("value"), pii)}
                           if isinstance(item, dict) else item for item in masked[key]]
    for key in _INDEX_LISTS:
        if isinstance(masked.get(key), list):
            masked[key] = [_mask_index_entry(item, column, pii) for item in masked[key]]
    if "observed_value" in masked and pii:
        masked["observed_value"] = mask_value(masked["observed_value"], pii)
    return masked


def _mask_index_entry(item: Any, column: str | None, pii: bool) -> Any:
    if not isinstance(item, dict):
        return mask_value(item, False)
    return {k: mask_value(v, pii and k == column) for k, v in item.items()}


def mask_validation_dict(validation: dict[str, Any]) -> dict[str, Any]:
    """Mask a whole suite validation result in its JSON form (what the results store writes)."""
    results = []
    for item in validation.get("results", []):
        config = item.get("expectation_config") or {}
        kwargs = config.get("kwargs") or {}
        pii = bool((config.get("meta") or {}).get("pii"))
        results.append({**item, "result": mask_result(item.get("result") or {},
                                                      kwargs.get("column"), pii)})
    return {**validation, "results": results}
