"""What the gates remember between runs, in `{lake}/_meta/gates/` (small JSON files, atomic):

    raw/<batch_id>.json     the verdict on one raw batch: passed | failed | released
    segment_sizes.json      the accepted segment sizes (baseline of the marts size band)
    last_<stage>.json       the outcome of the last run of each stage (ok, when, what failed)

Verdicts are final: a batch is gated once, when it is new (thresholds changed later do not
re-judge history). A failed batch stays failed until a person releases it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.io import atomic_path


def gates_dir(settings: Settings) -> Path:
    return settings.resolved_paths.meta / "gates"


def verdict_path(settings: Settings, batch_id: str) -> Path:
    return gates_dir(settings) / "raw" / f"{batch_id}.json"


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CdpError(f"gate state file {path} is unreadable ({type(exc).__name__}); "
                       f"restore or delete it") from None
    if not isinstance(data, dict):
        raise CdpError(f"gate state file {path} does not hold a JSON object; delete it")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
                       encoding="utf-8")


def read_verdicts(settings: Settings) -> dict[str, dict[str, Any]]:
    """batch_id -> verdict, for every raw batch that was gated."""
    folder = gates_dir(settings) / "raw"
    verdicts = {}
    for path in sorted(folder.glob("*.json")):
        verdict = read_json(path)
        if verdict is not None:
            verdicts[path.stem] = verdict
    return verdicts


def write_verdict(settings: Settings, batch_id: str, verdict: dict[str, Any]) -> None:
    write_json(verdict_path(settings, batch_id), verdict)


def read_segment_baseline(settings: Settings) -> dict[str, Any] | None:
    return read_json(gates_dir(settings) / "segment_sizes.json")


def write_segment_baseline(settings: Settings, sizes: dict[str, int], confirmed: bool) -> None:
    write_json(gates_dir(settings) / "segment_sizes.json",
               {"sizes": sizes, "recorded_at": now_utc(), "confirmed_by_person": confirmed})


def write_last_run(settings: Settings, stage: str, record: dict[str, Any]) -> None:
    write_json(gates_dir(settings) / f"last_{stage}.json", {"stage": stage, **record})


def last_run(settings: Settings, stage: str) -> dict[str, Any] | None:
    """The outcome of the last gate run of `stage` (None when it never ran)."""
    return read_json(gates_dir(settings) / f"last_{stage}.json")
