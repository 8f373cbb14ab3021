"""`cdp ingest`: every configured channel's landing files -> raw lake + quarantine + load log.

Commit protocol per batch (so a crash at any point leaves the lake as it was, or leaves only
uncommitted files that the next run sweeps away):
  1. stage raw + quarantine Parquet outside the lake and check the batch as a whole;
  2. move each staged file into the lake with `atomic_path` (one rename each);
  3. write the load-log entry last: its presence is what makes the batch committed.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from cdp import lake
from cdp.config import Channel, Settings
from cdp.errors import CdpError
from cdp.ingest.batch import StagedBatch, stage_batch
from cdp.ingest.readers import BatchFailure
from cdp.io import atomic_path, sha256_file
from cdp.summary import StepSummary

log = logging.getLogger(__name__)

STAGING_PREFIX = ".cdp-ingest-"
STALE_STAGING_SECONDS = 24 * 3600


class IngestError(CdpError):
    """Some batches failed as a whole. The others were committed; `summary` tells what loaded."""

    def __init__(self, message: str, summary: StepSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class ChannelTally:
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    rows_received: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, batch: StagedBatch) -> None:
        self.files_loaded += 1
        self.rows_received += batch.rows_received
        self.rows_loaded += batch.rows_loaded
        self.rows_quarantined += batch.rows_quarantined
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


def ingest(settings: Settings, channels: list[str] | None = None) -> StepSummary:
    """Load every new landing file of the given channels (default: all configured).

    Returns a summary with per-channel files seen / loaded / skipped (already loaded) / failed
    and rows received / loaded / quarantined. Raises `IngestError` (a `CdpError`) naming every
    file that failed as a whole and its rule, after all other files were processed.
    """
    selected = [settings.channel(name) for name in (channels or list(settings.channels))]
    paths = settings.resolved_paths
    started = time.perf_counter()
    _sweep_stale_staging(paths.lake.parent)
    committed = lake.committed_batches(settings)
    tallies: dict[str, ChannelTally] = {}
    failures: list[str] = []
    notes: list[str] = []
    with _progress() as progress:
        for channel in selected:
            tally = tallies[channel.name] = ChannelTally()
            channel_started = time.perf_counter()
            _sweep_uncommitted(settings, channel.name, committed)
            for path in _landing_files(paths.landing, channel):
                tally.files_seen += 1
                relative = path.relative_to(paths.landing).as_posix()
                try:
                    batch_id = sha256_file(path)
                except OSError as exc:  # vanished or unreadable since it was listed
                    tally.files_failed += 1
                    failures.append(f"{relative}: unreadable file ({type(exc).__name__})")
                    continue
                if batch_id in committed:
                    tally.files_skipped += 1
                    if committed[batch_id] != channel.name:
                        notes.append(f"{relative}: same content already loaded for channel "
                                     f"{committed[batch_id]}; skipped")
                    continue
                task = progress.add_task(f"{channel.name}: {path.name}",
                                         total=path.stat().st_size)
                try:
                    batch = _load_one(settings, channel, path, relative, batch_id,
                                      lambda n, task=task: progress.advance(task, n))
                except BatchFailure as failure:
                    tally.files_failed += 1
                    failures.append(f"{relative}: {failure.rule}"
                                    + (f" ({failure.detail})" if failure.detail else ""))
                    log.info("batch failed: %s: %s", relative, failure)
                    continue
                finally:
                    progress.remove_task(task)
                committed[batch_id] = channel.name
                tally.add(batch)
                log.info("loaded %s: %d received, %d loaded, %d quarantined", relative,
                         batch.rows_received, batch.rows_loaded, batch.rows_quarantined)
            tally.seconds = time.perf_counter() - channel_started
            if tally.files_seen == 0:
                notes.append(f"{channel.name}: no files match {channel.path}")
    summary = _summary(tallies, notes, time.perf_counter() - started)
    if failures:
        summary.ok = False
        raise IngestError(
            f"{len(failures)} file(s) failed as a whole and were not loaded (the lake is "
            f"unchanged for them; {summary.figures['files_loaded']} other file(s) loaded):\n  "
            + "\n  ".join(failures),
            summary,
        )
    return summary


def _load_one(settings: Settings, channel: Channel, path: Path, relative: str, batch_id: str,
              on_bytes: Callable[[int], None]) -> StagedBatch:
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    with _staging_dir(settings.resolved_paths.lake.parent) as staging:
        batch = stage_batch(
            path, relative, channel, batch_id, ingested_at, staging,
            max_field_bytes=settings.ingest.max_field_bytes,
            max_quarantine_share=settings.ingest.max_quarantine_share,
            on_bytes=on_bytes,
        )
        _commit(settings, batch)
    return batch


def _commit(settings: Settings, batch: StagedBatch) -> None:
    load_date = batch.ingested_at.date()
    lake_root = settings.resolved_paths.lake
    moves = [
        (batch.raw_file, lake.raw_path(settings, batch.channel, load_date, batch.batch_id)),
        (batch.quarantine_file,
         lake.quarantine_path(settings, batch.channel, load_date, batch.batch_id)),
    ]
    for staged, target in moves:
        if staged is not None:
            with atomic_path(target) as tmp:
                shutil.move(staged, tmp)
    entry = {
        "batch_id": batch.batch_id,
        "channel": batch.channel,
        "file": batch.file,
        "file_bytes": batch.file_bytes,
        "format": settings.channel(batch.channel).format,
        "status": "loaded",
        "rows_received": batch.rows_received,
        "rows_loaded": batch.rows_loaded,
        "rows_quarantined": batch.rows_quarantined,
        "quarantine_reasons": json.dumps(dict(sorted(batch.reasons.items()))),
        "load_date": load_date,
        "raw_file": _relative(moves[0], lake_root),
        "quarantine_file": _relative(moves[1], lake_root),
        "loaded_at": datetime.now(UTC).replace(tzinfo=None),
        "seconds": batch.seconds,
    }
    _write_load_log_entry(settings, entry)


def _write_load_log_entry(settings: Settings, entry: dict[str, object]) -> None:
    """The commit point of a batch: until this file exists, the batch did not happen."""
    table = pa.Table.from_pylist([entry], schema=lake.LOAD_LOG_SCHEMA)
    with atomic_path(lake.load_log_path(settings, str(entry["batch_id"]))) as tmp:
        pq.write_table(table, tmp)


def _relative(move: tuple[Path | None, Path], root: Path) -> str | None:
    staged, target = move
    return None if staged is None else target.relative_to(root).as_posix()


def _landing_files(landing: Path, channel: Channel) -> list[Path]:
    # Hidden and underscore files are uploads in progress or markers (`_SUCCESS`), not data.
    return sorted(
        p for p in landing.glob(channel.path)
        if p.is_file() and not p.name.startswith((".", "_"))
    )


def _sweep_uncommitted(settings: Settings, channel: str, committed: dict[str, str]) -> None:
    """Delete raw/quarantine files left by a crash before their load-log entry was written."""
    for folder in (lake.raw_dir(settings, channel), lake.quarantine_dir(settings, channel)):
        for leftover in folder.glob("*/*.parquet"):
            if committed.get(leftover.stem) != channel:
                log.warning("removing uncommitted file from an interrupted run: %s", leftover)
                leftover.unlink()


def _sweep_stale_staging(parent: Path) -> None:
    if not parent.is_dir():
        return
    cutoff = time.time() - STALE_STAGING_SECONDS
    for folder in parent.glob(f"{STAGING_PREFIX}*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _staging_dir(parent: Path) -> Iterator[Path]:
    """A private folder beside the lake (same file system: the final moves are renames)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        transient=True,
    )


def _summary(tallies: dict[str, ChannelTally], notes: list[str], seconds: float) -> StepSummary:
    summary = StepSummary(title="ingest")
    totals = ChannelTally()
    for name, t in tallies.items():
        summary.add(name, _tally_text(t))
        for attr in ("files_seen", "files_loaded", "files_skipped", "files_failed",
                     "rows_received", "rows_loaded", "rows_quarantined"):
            setattr(totals, attr, getattr(totals, attr) + getattr(t, attr))
        if t.reasons:
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(t.reasons.items()))
            notes.append(f"{name} quarantine: {reasons}")
    summary.add("total", _tally_text(totals))
    summary.add("time", f"{seconds:,.1f} s")
    summary.notes = notes
    summary.figures = {
        "channels": {
            name: {k: v for k, v in vars(t).items()} for name, t in tallies.items()
        },
        **{k: v for k, v in vars(totals).items() if k not in ("seconds", "reasons")},
        "seconds": seconds,
    }
    return summary


def _tally_text(t: ChannelTally) -> str:
    return (f"{t.files_loaded}/{t.files_seen} files loaded ({t.files_skipped} already loaded, "
            f"{t.files_failed} failed); {t.rows_received:,} rows = {t.rows_loaded:,} loaded + "
            f"{t.rows_quarantined:,} quarantined")
