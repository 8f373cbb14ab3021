"""Keeping a batch that failed its raw gate out of the raw lake, without losing it.

The batch's raw file moves (one rename, same file system) from

    {lake}/raw/<channel>/load_date=D/<batch_id>.parquet
to  {lake}/quarantine/<channel>/gate_failed/load_date=D/<batch_id>.parquet

and its verdict `{lake}/_meta/gates/raw/<batch_id>.json` says `failed` and why. Why this is
enough for every reader:

- `cdp.lake.raw_glob`, `committed_raw_files`, dbt's raw sources and identity resolution read
  `raw/<channel>/*/*.parquet`: the batch is simply not there any more.
- Its load-log entry stays `loaded` (the file *was* ingested), so `cdp ingest` keeps skipping
  the same content: the bad file is not loaded again. A corrected delivery is new content, a
  new batch, and is gated on its own.
- The gate_failed folder is one level deeper than `quarantine_glob` (`quarantine/<ch>/*/*.parquet`,
  rejected rows) and the ingest sweep, so neither mixes it with rejected rows nor deletes it.

The verdict is written before the move; a crash between the two is completed by the next gate
run. `release` (a person's decision that the batch is fine after all) moves it back.
"""

from __future__ import annotations

import os
from pathlib import Path

from cdp import lake
from cdp.config import Settings
from cdp.errors import CdpError

GATE_FAILED = "gate_failed"


def gate_failed_path(settings: Settings, channel: str, raw_file: Path) -> Path:
    """Where a raw file goes when its batch fails the gate (keeps its load_date folder)."""
    return lake.quarantine_dir(settings, channel) / GATE_FAILED / raw_file.parent.name \
        / raw_file.name


def gate_failed_glob(settings: Settings, channel: str) -> str:
    """Every raw file of a channel held back by its gate."""
    return str(lake.quarantine_dir(settings, channel) / GATE_FAILED / "*" / "*.parquet")


def hold_back(settings: Settings, channel: str, raw_file: Path) -> Path:
    """Move a raw file into gate quarantine (idempotent: an already moved file stays put)."""
    target = gate_failed_path(settings, channel, raw_file)
    if raw_file.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(raw_file, target)
    elif not target.exists():
        raise CdpError(f"batch file {raw_file.name} of {channel} is neither in the raw lake nor "
                       f"in gate quarantine ({target.parent})")
    return target


def put_back(settings: Settings, channel: str, raw_file: Path) -> None:
    """Move a held-back file back into the raw lake (idempotent)."""
    source = gate_failed_path(settings, channel, raw_file)
    if source.exists():
        raw_file.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, raw_file)
    elif not raw_file.exists():
        raise CdpError(f"batch file {raw_file.name} of {channel} is in neither {source.parent} "
                       f"nor the raw lake")
