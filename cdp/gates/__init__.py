"""Data-quality gates at every hand-off, with Great Expectations (suites in `expectations/`).

    run_gate(settings, "raw")       after ingest: every new batch of every channel
    run_gate(settings, "identity")  after resolve: identity_clusters / records / golden profiles
    run_gate(settings, "marts")     after dbt: segment sizes against the last accepted run, consent

Each returns a `StepSummary` (one row per suite run, warnings and findings as notes, the Data
Docs index path) or raises `GateError` (a CdpError whose `.summary` is that StepSummary) when an
error-level expectation fails; its message names the suite, expectation, column, rows and masked
sample values. Warning-level failures are reported, never raised.

Side effects, all documented in their modules: a raw batch that fails is held back from the raw
lake (cdp/gates/quarantine.py; `release_batch` puts it back); verdicts, the segment-size
baseline and the last outcome of each stage are kept in `{lake}/_meta/gates/`
(cdp/gates/state.py); Data Docs are built into `{artefacts}/data_docs/`.

Great Expectations is imported only when a gate runs (it takes seconds to import).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates import state
from cdp.gates.quarantine import gate_failed_glob
from cdp.gates.report import GateError
from cdp.summary import StepSummary

Stage = Literal["raw", "identity", "marts"]

__all__ = ["GateError", "activation_allowed", "gate_failed_glob", "last_run", "release_batch",
           "run_gate"]


def run_gate(settings: Settings, stage: Stage, channel: str | None = None,
             confirm: bool = False) -> StepSummary:
    """Run the gate of one stage; raise GateError when an error-level expectation fails.

    `channel` limits the raw gate to one channel. `confirm` (marts only) accepts segment sizes
    that moved beyond their band and records them as the new baseline; consent failures are
    never accepted.
    """
    if stage not in ("raw", "identity", "marts"):
        raise CdpError(f"unknown gate stage '{stage}'; use raw, identity or marts")
    if channel is not None and stage != "raw":
        raise CdpError("a channel applies to the raw gate only")
    if confirm and stage != "marts":
        raise CdpError("confirm applies to the marts gate only (it accepts new segment sizes)")
    if channel is not None:
        settings.channel(channel)  # unknown channel: a clear config error before GX loads
    started = time.perf_counter()

    from cdp.gates.context import GateContext
    from cdp.gates.report import error_message, summarize

    ctx = GateContext(settings)
    if stage == "raw":
        from cdp.gates.raw import run_raw

        outcomes, notes, figures, extra = run_raw(settings, ctx, channel)
    elif stage == "identity":
        from cdp.gates.identity import run_identity

        outcomes, notes, figures, extra = run_identity(settings, ctx)
    else:
        from cdp.gates.marts import run_marts

        outcomes, notes, figures, extra = run_marts(settings, ctx, confirm)
    index = ctx.build_docs()
    seconds = round(time.perf_counter() - started, 2)
    figures.update(stage=stage, seconds=seconds, data_docs=str(index))
    summary = summarize(f"validate {stage}", outcomes, notes, figures)
    summary.add("data docs", str(index))
    summary.add("time", f"{seconds:.1f} s")
    state.write_last_run(settings, stage, {
        "ok": summary.ok, "checked_at": state.now_utc(), "channel": channel,
        "failed": summary.figures["failed"], "errors": summary.figures["errors"],
        "warnings": summary.figures["warnings"], "confirmed": bool(figures.get("confirmed")),
    })
    if not summary.ok:
        raise GateError(error_message(stage, outcomes, extra) + f"\nData Docs: {index}",
                        summary)
    return summary


def release_batch(settings: Settings, batch_id: str, reason: str = "") -> StepSummary:
    """Put a batch held back by the raw gate back into the raw lake (a person checked it).

    It then counts as accepted: it is not gated again and joins the row-count history.
    """
    from cdp.gates.raw import release

    verdict = release(settings, batch_id, reason)
    summary = StepSummary(title="release batch")
    summary.add("batch", batch_id)
    summary.add("channel", verdict["channel"])
    summary.add("back in the raw lake", verdict["raw_file"] or "(no rows)")
    summary.figures = {"verdict": verdict}
    return summary


def last_run(settings: Settings, stage: Stage) -> dict[str, Any] | None:
    """The outcome of the last run of a stage's gate (None when it never ran)."""
    return state.last_run(settings, stage)


def activation_allowed(settings: Settings) -> tuple[bool, str]:
    """Whether segments may be activated: the last marts gate passed (or was confirmed)."""
    record = state.last_run(settings, "marts")
    if record is None:
        return False, "the marts gate has not run: run `cdp validate marts`"
    if not record.get("ok"):
        return False, (f"the last marts gate ({record.get('checked_at')}) failed: "
                       f"{', '.join(record.get('failed') or [])}; fix the data, or confirm new "
                       f"segment sizes with `cdp validate marts --confirm`")
    return True, f"marts gate passed at {record.get('checked_at')}"
