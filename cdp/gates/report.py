"""Turning GX validation results into findings, summary lines and the gate's error message.

Every text here is built from masked values (cdp.gates.masking): it is safe for logs, the CLI
and Airflow task logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdp.errors import CdpError
from cdp.gates.masking import mask_result, mask_value
from cdp.summary import StepSummary

MAX_SAMPLES = 5
_EMAIL_IN_TEXT = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")
_LONG_NUMBER = re.compile(r"\+?\d[\d ]{6,}\d")


class GateError(CdpError):
    """A gate found an error-level failure. `summary` is the gate's StepSummary (for the CLI)."""

    def __init__(self, message: str, summary: StepSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class Finding:
    """One failed expectation, described without raw PII."""

    suite: str
    expectation: str
    column: str | None
    severity: str  # critical | warning | info
    detail: str

    def __str__(self) -> str:
        where = f" on column {self.column}" if self.column else ""
        return f"{self.suite}: {self.expectation}{where}: {self.detail}"


@dataclass
class SuiteOutcome:
    """What one suite found on one subject (a raw batch, the identity tables, the marts)."""

    suite: str
    subject: str
    evaluated: int = 0
    failures: list[Finding] = field(default_factory=list)  # error level: stop
    warnings: list[Finding] = field(default_factory=list)  # reported only
    accepted: list[Finding] = field(default_factory=list)  # failures a person confirmed

    @property
    def passed(self) -> bool:
        return not self.failures

    def status(self) -> str:
        if self.failures:
            return f"FAILED ({len(self.failures)} of {self.evaluated} expectations)"
        text = f"passed ({self.evaluated} expectations"
        if self.warnings:
            text += f", {len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}"
        if self.accepted:
            text += f", {len(self.accepted)} confirmed"
        return text + ")"


def outcome_from(result: Any, suite: str, subject: str) -> SuiteOutcome:
    """Findings of a GX ExpectationSuiteValidationResult, split by severity.

    Table-level findings come first; a warning is dropped when an error already reports the
    same expectation on the same column (the warning band is the narrower twin of the error).
    """
    outcome = SuiteOutcome(suite=suite, subject=subject, evaluated=len(result.results))
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        severity = getattr(config.severity, "value", str(config.severity))
        finding = Finding(suite=suite, expectation=config.type,
                          column=config.kwargs.get("column"), severity=severity,
                          detail=_detail(item))
        if severity == "critical":
            outcome.failures.append(finding)
        else:
            outcome.warnings.append(finding)
    outcome.failures.sort(key=lambda f: f.column is not None)
    errors = {(f.expectation, f.column) for f in outcome.failures}
    outcome.warnings = [w for w in outcome.warnings if (w.expectation, w.column) not in errors]
    return outcome


def _detail(item: Any) -> str:
    config = item.expectation_config
    kwargs = dict(config.kwargs)
    pii = bool((config.meta or {}).get("pii"))
    if error := _exception_message(item.exception_info):
        if "does not exist" in error and kwargs.get("column"):
            return "not evaluated: the column is missing"
        return f"could not be evaluated: {scrub(error)}"
    result = mask_result(dict(item.result or {}), kwargs.get("column"), pii)
    if config.type == "expect_table_columns_to_match_set":
        missing = ((result.get("details") or {}).get("mismatched") or {}).get("missing") or []
        return f"missing column{'s' if len(missing) != 1 else ''}: {', '.join(missing)}"
    if "unexpected_count" in result:
        return _map_detail(result, kwargs, config.type)
    observed = result.get("observed_value")
    return f"observed {_fmt(observed)}, expected {_bounds(kwargs)}"


def _map_detail(result: dict[str, Any], kwargs: dict[str, Any], expectation: str) -> str:
    """Column-map expectations: how many values, which rows, sample values (already masked)."""
    count = result.get("unexpected_count", 0)
    nonnull = result.get("element_count", 0) - result.get("missing_count", 0)
    text = f"{count} of {nonnull} non-empty values unexpected"
    if kwargs.get("mostly") not in (None, 1, 1.0):
        share = (nonnull - count) / nonnull if nonnull else 1.0
        text += f" ({share:.1%} conform, at least {float(kwargs['mostly']):.1%} required)"
    rule = _rule(kwargs, negated="_not_" in expectation)
    if rule:
        text += f"; rule {rule}"
    names = result.get("unexpected_index_column_names") or []
    rows = [r for r in (result.get("partial_unexpected_index_list") or [])
            if isinstance(r, dict)][:MAX_SAMPLES]
    if len(names) == 1 and rows:
        text += f"; at {names[0]} {', '.join(_fmt(r.get(names[0])) for r in rows)}"
    elif names and rows:
        text += "; at " + "; ".join(", ".join(f"{n}={_fmt(r.get(n))}" for n in names)
                                    for r in rows)
    samples = [_fmt(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_SAMPLES]]
    if samples:
        text += f"; e.g. {', '.join(dict.fromkeys(samples))}"
    return text


def _rule(kwargs: dict[str, Any], negated: bool) -> str:
    if "value_set" in kwargs:
        values = "{" + ", ".join(sorted(map(str, kwargs["value_set"]))) + "}"
        return f"{'not ' if negated else ''}in {values}"
    if "min_value" in kwargs or "max_value" in kwargs:
        return _bounds(kwargs)
    return ""


def _bounds(kwargs: dict[str, Any]) -> str:
    if "quantile_ranges" in kwargs:
        ranges = kwargs["quantile_ranges"]
        return ", ".join(f"q{q} in {r}" for q, r in zip(ranges["quantiles"],
                                                          ranges["value_ranges"], strict=False))
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    left = "(" if kwargs.get("strict_min") else "["
    right = ")" if kwargs.get("strict_max") else "]"
    return f"{left}{_fmt(low) if low is not None else '-inf'}, " \
           f"{_fmt(high) if high is not None else 'inf'}{right}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "null"
    if isinstance(value, str) and not value.strip():
        return repr(value)
    return str(value)


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "error")
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return str(nested.get("exception_message") or "error")
    return None


def scrub(text: str) -> str:
    """Mask anything email- or phone-like in free text (GX and database messages)."""
    text = _EMAIL_IN_TEXT.sub(lambda m: str(mask_value(m.group(0))), text)
    return _LONG_NUMBER.sub(lambda m: str(mask_value(m.group(0))), text).splitlines()[0]


def summarize(title: str, outcomes: list[SuiteOutcome], notes: list[str],
              figures: dict[str, Any]) -> StepSummary:
    """The gate's StepSummary: one row per suite and subject, findings as notes."""
    summary = StepSummary(title=title, notes=list(notes), figures=dict(figures))
    for outcome in outcomes:
        label = outcome.suite if not outcome.subject else f"{outcome.suite} [{outcome.subject}]"
        summary.add(label, outcome.status())
        for finding in outcome.failures:
            summary.notes.append(f"ERROR {finding}")
        for finding in outcome.accepted:
            summary.notes.append(f"CONFIRMED {finding}")
        for finding in outcome.warnings:
            summary.notes.append(f"WARNING {finding}")
    summary.ok = all(o.passed for o in outcomes)
    summary.figures.update({
        "suites_run": len(outcomes),
        "failed": [f"{o.suite} [{o.subject}]" for o in outcomes if not o.passed],
        "errors": sum(len(o.failures) for o in outcomes),
        "warnings": sum(len(o.warnings) for o in outcomes),
    })
    return summary


def error_message(stage: str, outcomes: list[SuiteOutcome], extra: list[str]) -> str:
    """The GateError message: which suite, expectation, column, rows and masked samples."""
    failed = [o for o in outcomes if not o.passed]
    lines = [f"{stage} gate failed: {len(failed)} of {len(outcomes)} suite runs have errors"]
    for outcome in failed:
        lines.append(f"- {outcome.suite} [{outcome.subject}]")
        lines += [f"    {finding.expectation}"
                  f"{' on column ' + finding.column if finding.column else ''}: {finding.detail}"
                  for finding in outcome.failures]
    return "\n".join(lines + extra)
