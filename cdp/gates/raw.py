"""The raw gate: every new batch of every channel, after ingest, before anything reads it.

A batch is new when it is committed (load log) and has no verdict yet. Each one is validated
against `raw.<channel>` (the raw template, see cdp/gates/suites.py) with parameters computed for
that batch: event-time bounds from the batch's own load time (so re-checking later gives the
same answer) and a row-count band from the channel's recent passed batches loaded before it.
A batch with an error-level failure is held back (cdp/gates/quarantine.py).
"""

from __future__ import annotations

import contextlib
import statistics
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cdp import lake
from cdp.config import Channel, Settings
from cdp.errors import CdpError
from cdp.gates import quarantine, state
from cdp.gates.context import GateContext
from cdp.gates.report import SuiteOutcome, outcome_from
from cdp.gates.suites import LINEAGE_COLUMNS, Suite, for_channel, load_suites, required_columns

ACCEPTED = ("passed", "released")  # verdicts whose batches count as history and stay in raw


def run_raw(settings: Settings, ctx: GateContext, channel: str | None
            ) -> tuple[list[SuiteOutcome], list[str], dict[str, Any], list[str]]:
    """Gate every new batch (of one channel, when given).

    Returns the outcomes, summary notes, figures and extra lines for the error message.
    """
    templates = load_suites(settings, "raw")
    channels = [settings.channel(channel)] if channel else list(settings.channels.values())
    log = [e for e in lake.read_load_log(settings).to_pylist() if e["status"] == "loaded"]
    verdicts = state.read_verdicts(settings)
    notes = _finish_interrupted(settings, verdicts)
    outcomes: list[SuiteOutcome] = []
    held_back: list[str] = []
    extra: list[str] = []
    gated = 0
    con = duckdb.connect()
    try:
        for ch in channels:
            entries = sorted((e for e in log if e["channel"] == ch.name),
                             key=lambda e: (e["loaded_at"], e["batch_id"]))
            suites = [for_channel(t, ch) for t in templates]
            for entry in entries:
                if entry["batch_id"] in verdicts:
                    continue
                frame = _read_batch(con, settings, ch, entry)
                if frame is None:
                    notes.append(f"{ch.name} batch {entry['batch_id'][:12]}: its raw file "
                                 f"{entry['raw_file']} is missing; not gated")
                    continue
                gated += 1
                batch_outcomes, verdict = _gate_batch(settings, ctx, ch, suites, frame, entry,
                                                      entries, verdicts, notes)
                outcomes += batch_outcomes
                verdicts[entry["batch_id"]] = verdict
                if verdict["status"] == "failed" and verdict["held_back_file"]:
                    held_back.append(entry["batch_id"])
                    extra.append(f"batch {entry['batch_id'][:12]} of {ch.name} is held back from "
                                 f"the raw lake: {verdict['held_back_file']} under "
                                 f"{settings.resolved_paths.lake} (release it with "
                                 f"cdp.gates.release_batch once checked)")
    finally:
        con.close()
    if not gated:
        notes.append("no new raw batch to gate")
    still_held = sorted(v["channel"] for v in verdicts.values() if v.get("status") == "failed"
                        and (channel is None or v.get("channel") == channel))
    if still_held:
        per_channel = {c: still_held.count(c) for c in dict.fromkeys(still_held)}
        notes.append("held back by the raw gate, awaiting a fix or release: " + ", ".join(
            f"{c} ({n} batch{'es' if n > 1 else ''})" for c, n in per_channel.items()))
    figures = {"batches_gated": gated, "held_back": held_back,
               "batches_held_back_total": sum(v.get("status") == "failed"
                                              for v in verdicts.values())}
    return outcomes, notes, figures, extra


def _gate_batch(settings: Settings, ctx: GateContext, channel: Channel, suites: list[Suite],
                frame: pd.DataFrame, entry: dict[str, Any], entries: list[dict[str, Any]],
                verdicts: dict[str, dict[str, Any]], notes: list[str]
                ) -> tuple[list[SuiteOutcome], dict[str, Any]]:
    """Validate one batch, record its verdict and hold it back when it failed.

    The verdict is written before the file moves (see cdp/gates/quarantine.py)."""
    outcomes = []
    for suite in suites:
        params, note = _parameters(suite, channel, entry, entries, verdicts)
        result = ctx.validate(suite, frame, params, run_name=f"batch-{entry['batch_id'][:16]}")
        outcomes.append(outcome_from(result, suite.name, _subject(entry)))
        if note:
            notes.append(f"{suite.name} [{_subject(entry)}]: {note}")
    verdict = _verdict(entry, suites, outcomes, len(frame))
    raw_file = settings.resolved_paths.lake / entry["raw_file"] if entry["raw_file"] else None
    if verdict["status"] == "failed" and raw_file is not None:
        target = quarantine.gate_failed_path(settings, channel.name, raw_file)
        verdict["held_back_file"] = str(target.relative_to(settings.resolved_paths.lake))
        state.write_verdict(settings, entry["batch_id"], verdict)
        quarantine.hold_back(settings, channel.name, raw_file)
    else:
        state.write_verdict(settings, entry["batch_id"], verdict)
    return outcomes, verdict


def _subject(entry: dict[str, Any]) -> str:
    return f"batch {entry['batch_id'][:12]} {entry['file']}"


def _read_batch(con: duckdb.DuckDBPyConnection, settings: Settings, channel: Channel,
                entry: dict[str, Any]) -> pd.DataFrame | None:
    """The batch's rows as ingested. A batch that loaded no row has no raw file: an empty frame
    with the declared columns (so only its row count can fail)."""
    if not entry["raw_file"]:
        return pd.DataFrame(columns=[*channel.columns, *LINEAGE_COLUMNS])
    path = settings.resolved_paths.lake / entry["raw_file"]
    if not path.exists():
        return None
    try:
        frame = con.execute("select * from read_parquet(?, hive_partitioning = false)",
                            [str(path)]).df()
    except duckdb.Error as exc:
        raise CdpError(f"raw batch file {path} of {channel.name} is unreadable "
                       f"({type(exc).__name__}); restore it, or delete its three files (raw, "
                       f"quarantine, load log) and re-ingest") from None
    event = channel.event_time
    if event in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[event]):
        # A DATE column arrives as objects: compare it as a timestamp. Not dates at all: leave
        # it, and the bounds expectation reports it.
        with contextlib.suppress(ValueError, TypeError):
            frame[event] = pd.to_datetime(frame[event])
    return frame


def _parameters(suite: Suite, channel: Channel, entry: dict[str, Any],
                entries: list[dict[str, Any]], verdicts: dict[str, dict[str, Any]]
                ) -> tuple[dict[str, Any], str | None]:
    """`$PARAMETER` values for one batch, and a note when the row-count band is not yet known."""
    p = suite.parameters
    loaded_at = pd.Timestamp(entry["loaded_at"])
    params: dict[str, Any] = {
        "required_columns": required_columns(channel),
        "earliest_event_time": loaded_at - pd.Timedelta(days=p["event_time_max_age_days"]),
        "latest_event_time": loaded_at + pd.Timedelta(
            hours=p["event_time_future_tolerance_hours"]),
    }
    history = [e["rows_loaded"] for e in entries
               if (e["loaded_at"], e["batch_id"]) < (entry["loaded_at"], entry["batch_id"])
               and verdicts.get(e["batch_id"], {}).get("status") in ACCEPTED
               ][-int(p["row_count_history_batches"]):]
    if len(history) < int(p["row_count_min_history_batches"]):
        params.update(min_rows=None, max_rows=None, warn_min_rows=None, warn_max_rows=None)
        return params, "no row-count history yet (band starts with the next batch)"
    median = statistics.median(history)
    params.update(
        min_rows=int(median * p["row_count_min_ratio"]),
        max_rows=int(median * p["row_count_max_ratio"]) + 1,
        warn_min_rows=int(median * p["row_count_warn_min_ratio"]),
        warn_max_rows=int(median * p["row_count_warn_max_ratio"]) + 1,
    )
    return params, None


def _verdict(entry: dict[str, Any], suites: list[Suite], outcomes: list[SuiteOutcome],
             rows: int) -> dict[str, Any]:
    failed = any(not o.passed for o in outcomes)
    return {
        "batch_id": entry["batch_id"],
        "channel": entry["channel"],
        "file": entry["file"],
        "raw_file": entry["raw_file"],
        "rows": rows,
        "status": "failed" if failed else "passed",
        "suites": {s.name: s.fingerprint for s in suites},
        "errors": [str(f) for o in outcomes for f in o.failures],
        "warnings": [str(f) for o in outcomes for f in o.warnings],
        "checked_at": state.now_utc(),
        "held_back_file": None,
    }


def _finish_interrupted(settings: Settings, verdicts: dict[str, dict[str, Any]]) -> list[str]:
    """A crash between writing a failed verdict and moving the file: move it now."""
    notes = []
    for batch_id, verdict in verdicts.items():
        if verdict.get("status") != "failed" or not verdict.get("raw_file"):
            continue
        raw_file = settings.resolved_paths.lake / verdict["raw_file"]
        if raw_file.exists():
            quarantine.hold_back(settings, verdict["channel"], raw_file)
            notes.append(f"batch {batch_id[:12]} of {verdict['channel']}: finished holding it "
                         f"back (an earlier run was interrupted)")
    return notes


def release(settings: Settings, batch_id: str, reason: str = "") -> dict[str, Any]:
    """A person's decision: the held-back batch is fine; move it back into the raw lake.

    The verdict becomes `released` (with when and why): the batch counts as accepted history and
    is never gated again. Returns the updated verdict.
    """
    verdict = state.read_verdicts(settings).get(batch_id)
    if verdict is None or verdict.get("status") != "failed":
        raise CdpError(f"batch {batch_id} is not held back by a gate "
                       f"(verdict: {verdict.get('status') if verdict else 'none'})")
    if verdict.get("raw_file"):
        quarantine.put_back(settings, verdict["channel"],
                            settings.resolved_paths.lake / Path(verdict["raw_file"]))
    verdict = {**verdict, "status": "released", "released_at": state.now_utc(),
               "release_reason": reason, "held_back_file": None}
    state.write_verdict(settings, batch_id, verdict)
    return verdict
