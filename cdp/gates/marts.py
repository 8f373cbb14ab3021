"""The marts gate: after `cdp build`, before any segment is activated.

`marts.segment_sizes` compares every segment's size with the accepted baseline (the sizes of
the previous passing or confirmed run); `marts.segment_consent` checks that no member lacks
consent for the segment's channel. A size failure stops activation until a person confirms:
`confirm=True` accepts the new sizes (the failures are reported as confirmed) and records them
as the new baseline. Consent failures can never be confirmed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates import state
from cdp.gates import warehouse_frames as frames
from cdp.gates.context import GateContext
from cdp.gates.report import SuiteOutcome, outcome_from
from cdp.gates.suites import Suite, load_suites


def run_marts(settings: Settings, ctx: GateContext, confirm: bool
              ) -> tuple[list[SuiteOutcome], list[str], dict[str, Any], list[str]]:
    """Validate the marts; returns outcomes, notes, figures, extra message lines."""
    suites = load_suites(settings, "marts")
    con = frames.open_warehouse(settings)
    try:
        schema = frames.marts_schema(con)
        sizes = frames.segment_sizes(con, schema)
        consent = frames.consent_frame(con, schema)
    finally:
        con.close()
    baseline_record = state.read_segment_baseline(settings)
    baseline = {str(k): int(v) for k, v in ((baseline_record or {}).get("sizes") or {}).items()}
    notes: list[str] = []
    if baseline_record is None:
        notes.append("no segment-size baseline yet: this run's sizes become the baseline")
    outcomes: list[SuiteOutcome] = []
    for suite in suites:
        if suite.frame == "segment_sizes":
            frame = sizes_frame(sizes, baseline, suite)
        elif suite.frame == "segment_consent":
            frame = consent
        else:
            raise CdpError(f"suite {suite.name}: unknown frame '{suite.frame}' in meta.cdp.frame")
        result = ctx.validate(suite, frame, {}, run_name="marts")
        outcome = outcome_from(result, suite.name, f"{schema} schema")
        if suite.confirmable and confirm and outcome.failures:
            outcome.accepted, outcome.failures = outcome.failures, []
        outcomes.append(outcome)
    extra: list[str] = []
    size_failed = any(not o.passed for o, s in zip(outcomes, suites, strict=True)
                      if s.confirmable)
    all_passed = all(o.passed for o in outcomes)
    confirmed = confirm and any(o.accepted for o in outcomes)
    if all_passed:
        state.write_segment_baseline(settings, sizes, confirmed=confirmed)
        if confirmed:
            notes.append("new segment sizes confirmed by a person and recorded as the baseline")
    elif size_failed:
        extra.append("segment sizes moved beyond their band: activation stays stopped until a "
                     "person checks them and confirms (`cdp validate marts --confirm`, i.e. "
                     "run_gate(settings, 'marts', confirm=True))")
    figures = {"segments": len(sizes), "segment_sizes": sizes,
               "baseline_sizes": baseline or None, "members_checked_for_consent": len(consent),
               "confirmed": confirmed}
    return outcomes, notes, figures, extra


def sizes_frame(sizes: dict[str, int], baseline: dict[str, int], suite: Suite) -> pd.DataFrame:
    """One row per segment now or in the baseline (a vanished segment counts as size 0)."""
    min_previous = int(suite.parameters.get("min_previous_size", 0))
    rows = []
    for segment in sorted(set(sizes) | set(baseline)):
        size = sizes.get(segment, 0)
        previous = baseline.get(segment)
        growth = size / previous if previous and previous >= min_previous else None
        rows.append({"segment": segment, "size": size, "previous_size": previous,
                     "growth": growth, "emptied": bool(previous and size == 0)})
    frame = pd.DataFrame(rows, columns=["segment", "size", "previous_size", "growth", "emptied"])
    frame["growth"] = frame["growth"].astype("float64")
    frame["emptied"] = frame["emptied"].astype(bool)
    return frame
