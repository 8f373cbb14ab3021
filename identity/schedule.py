"""Which resolve a scheduled run does: incremental runs between periodic full runs.

`identity.scheduled_mode` in cdp.yaml: `full` (every scheduled run recomputes everything, the
default) or `auto`. In `auto`, `cdp run` and the `cdp_identity` DAG link only the new batches
(`identity.incremental`) unless a full run is due:

- there is no previous run, or no saved Splink model;
- the last full run is older than `identity.full_resolve_every_days` (the full run is the
  reference: it re-trains the model and re-decides every link);
- the identity configuration changed since the last full run (identifiers, guards,
  threshold, survivorship, a channel's identity columns): the saved model and the existing
  links were made under the old one.

`cdp resolve` (full) and `cdp resolve --incremental` always do what they say; `cdp resolve
--auto` decides as `auto` does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cdp.config import Settings
from cdp.summary import StepSummary
from identity.store import (
    SCHEMA,
    artefacts_dir,
    has_table,
    open_warehouse_if_any,
    write_text_atomic,
)

MODES = ("full", "incremental", "auto", "scheduled")  # what callers may ask for
FINGERPRINT_FILE = "resolve_settings.json"  # beside the saved model, written by each full run
MODEL_FILE = "splink_model.json"  # identity.model.MODEL_FILE (not imported: loads Splink)


@dataclass(frozen=True)
class Choice:
    mode: str  # full | incremental
    reason: str


def settings_fingerprint(settings: Settings) -> str:
    """A hash of everything in the configuration that changes what resolve links."""
    identity = {
        "identity": settings.identity.model_dump(
            mode="json", exclude={"scheduled_mode", "full_resolve_every_days"}),
        "channels": {name: channel.identity for name, channel in sorted(settings.channels.items())},
        "region": settings.default_region,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def record_full_run(settings: Settings) -> None:
    """Remember the configuration the full run that just finished worked under."""
    write_text_atomic(artefacts_dir(settings) / FINGERPRINT_FILE,
                      json.dumps({"fingerprint": settings_fingerprint(settings)}))


def resolve_in_mode(settings: Settings, mode: str = "scheduled",
                    trigger: str | None = None) -> StepSummary:
    """Resolve in `mode`: full, incremental, auto (`choose_mode` decides) or scheduled (what
    `identity.scheduled_mode` says); the summary says which ran and why. `trigger` names who
    asked (kept in the run log)."""
    from identity.resolve import resolve  # resolve imports this module

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    asked = mode
    if mode == "scheduled":
        mode = settings.identity.scheduled_mode
    choice = (choose_mode(settings) if mode == "auto" else
              Choice(mode, "identity.scheduled_mode" if asked == "scheduled" else "asked for"))
    summary = resolve(settings, incremental=choice.mode == "incremental", trigger=trigger)
    summary.notes.append(f"{choice.mode} resolve: {choice.reason}")
    summary.figures["mode"] = choice.mode
    return summary


def choose_mode(settings: Settings, now: datetime | None = None) -> Choice:
    """Full or incremental for the next resolve, and why (for the summary)."""
    last_full = last_full_run(settings)
    if last_full is None:
        return Choice("full", "no previous full run")
    artefacts = artefacts_dir(settings)
    if not (artefacts / MODEL_FILE).exists():
        return Choice("full", "no saved Splink model")
    fingerprint_file = artefacts / FINGERPRINT_FILE
    recorded = (json.loads(fingerprint_file.read_text(encoding="utf-8")).get("fingerprint")
                if fingerprint_file.exists() else None)
    if recorded != settings_fingerprint(settings):
        return Choice("full", "the identity configuration changed since the last full run")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    due = last_full + timedelta(days=settings.identity.full_resolve_every_days)
    if now >= due:
        return Choice("full", f"the last full run is older than "
                              f"{settings.identity.full_resolve_every_days:g} days")
    return Choice("incremental", f"full run due after {due:%Y-%m-%d %H:%M} UTC")


def last_full_run(settings: Settings) -> datetime | None:
    con = open_warehouse_if_any(settings)
    if con is None:
        return None
    try:
        if not has_table(con, "resolve_runs"):
            return None
        return con.execute(f"select max(finished_at) from {SCHEMA}.resolve_runs "
                           "where mode = 'full'").fetchall()[0][0]
    finally:
        con.close()
