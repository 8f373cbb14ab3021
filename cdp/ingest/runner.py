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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from cdp.erasure import Tombstones

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
    rows_erased: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, batch: StagedBatch) -> None:
        self.files_loaded += 1
        self.rows_received += batch.rows_received
        self.rows_loaded += batch.rows_loaded
        self.rows_quarantined += batch.rows_quarantined
        self.rows_erased += batch.rows_erased
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


@dataclass
class FileResult:
    """What staging one landing file gave: a staged batch ready to commit, a failure of the
    file as a whole, or nothing to do (its content was loaded before: `batch` is None)."""

    channel: str
    relative: str
    batch_id: str | None = None
    batch: StagedBatch | None = None
    failure: str | None = None  # "rule (detail)": names the problem, never a data value
    staging: Path | None = None  # the private folder holding the staged files
    path: Path | None = None  # the landing file


def ingest(settings: Settings, channels: list[str] | None = None) -> StepSummary:
    """Load every new landing file of the given channels (default: all configured).

    Returns a summary with per-channel files seen / loaded / skipped (already loaded) / failed
    and rows received / loaded / quarantined. Raises `IngestError` (a `CdpError`) naming every
    file that failed as a whole and its rule, after all other files were processed.

    On `engine: spark` the files are read and validated by Spark tasks, one file per task, with
    this very code (`stage_file`); committing stays here, in landing-file order, so the lake,
    the quarantine and the load log are the same on both engines (see cdp/ingest/spark.py).

    Runs under the shared lake lock (`cdp forget` takes it exclusively); records of erased
    people (tombstones) are dropped and counted as erased, never written.
    """
    from cdp.erasure import lake_lock

    selected = [settings.channel(name) for name in (channels or list(settings.channels))]
    with lake_lock(settings, exclusive=False):
        return _ingest(settings, selected)


def _ingest(settings: Settings, selected: list[Channel]) -> StepSummary:
    from cdp.erasure import Tombstones, landing_aliases

    paths = settings.resolved_paths
    started = time.perf_counter()
    _sweep_stale_staging(paths.lake.parent)
    committed = lake.committed_batches(settings)
    files = {}
    for channel in selected:
        _sweep_uncommitted(settings, channel.name, committed)
        files[channel.name] = _landing_files(paths.landing, channel)
    # a redacted landing file's new content counts as loaded: it holds nothing new
    committed.update(landing_aliases(settings))
    tombstones = Tombstones.load(settings)
    staged_on_spark: Iterator[FileResult] | None = None
    if settings.engine == "spark":
        from cdp.ingest.spark import stage_on_spark

        staged_on_spark = iter(stage_on_spark(settings, [
            (channel, path, path.relative_to(paths.landing).as_posix())
            for channel in selected for path in files[channel.name]], committed, tombstones))
    tallies: dict[str, ChannelTally] = {}
    failures: list[str] = []
    notes: list[str] = []
    with _progress() as progress:
        for channel in selected:
            tally = tallies[channel.name] = ChannelTally()
            channel_started = time.perf_counter()
            for path in files[channel.name]:
                tally.files_seen += 1
                relative = path.relative_to(paths.landing).as_posix()
                if staged_on_spark is not None:
                    result = next(staged_on_spark)
                else:
                    task = progress.add_task(f"{channel.name}: {path.name}",
                                             total=_size(path))
                    try:
                        result = stage_file(settings, channel, path, relative, committed,
                                            tombstones,
                                            lambda n, task=task: progress.advance(task, n))
                    finally:
                        progress.remove_task(task)
                _settle(settings, result, committed, tally, failures, notes, tombstones)
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


def stage_file(settings: Settings, channel: Channel, path: Path, relative: str,
               committed: dict[str, str], tombstones: Tombstones | None = None,
               on_bytes: Callable[[int], None] = lambda n: None,
               ingested_at: datetime | None = None) -> FileResult:
    """Hash one landing file and, unless that content was loaded before, stage it as a batch in
    a private folder beside the lake (left there for `_settle` to commit). The unit of work on
    both engines: Spark runs it in its tasks. `ingested_at` defaults to now (UTC)."""
    try:
        batch_id = sha256_file(path)
    except OSError as exc:  # vanished or unreadable since it was listed
        return FileResult(channel.name, relative, failure=f"unreadable file ({type(exc).__name__})")
    if batch_id in committed:
        return FileResult(channel.name, relative, batch_id, path=path)
    erased = (tombstones.for_channel(channel, settings.identity.identifiers).incoming
              if tombstones is not None else None)
    staging = _new_staging_dir(settings.resolved_paths.lake.parent)
    try:
        batch = stage_batch(
            path, relative, channel, batch_id,
            ingested_at or datetime.now(UTC).replace(tzinfo=None), staging,
            max_field_bytes=settings.ingest.max_field_bytes,
            max_quarantine_share=settings.ingest.max_quarantine_share,
            on_bytes=on_bytes, erased=erased,
        )
    except BatchFailure as failure:
        shutil.rmtree(staging, ignore_errors=True)
        return FileResult(channel.name, relative, batch_id, failure=failure.rule + (
            f" ({failure.detail})" if failure.detail else ""), path=path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return FileResult(channel.name, relative, batch_id, batch, staging=staging, path=path)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:  # vanished since it was listed: stage_file reports it
        return None


def _settle(settings: Settings, result: FileResult, committed: dict[str, str],
            tally: ChannelTally, failures: list[str], notes: list[str],
            tombstones: Tombstones | None = None) -> None:
    """Commit a staged file (or count it as failed / already loaded); always drop its staging."""
    try:
        if result.failure is not None:
            tally.files_failed += 1
            failures.append(f"{result.relative}: {result.failure}")
            log.info("batch failed: %s: %s", result.relative, result.failure)
            return
        owner = committed.get(str(result.batch_id))
        if result.batch is None or owner is not None:
            # loaded before, or earlier in this run (the same content delivered twice)
            tally.files_skipped += 1
            if owner is not None and owner != result.channel:
                notes.append(f"{result.relative}: same content already loaded for channel "
                             f"{owner}; skipped")
            return
        batch = result.batch
        _commit(settings, batch)
        committed[batch.batch_id] = batch.channel
        tally.add(batch)
        log.info("loaded %s: %d received, %d loaded, %d quarantined, %d erased",
                 result.relative, batch.rows_received, batch.rows_loaded,
                 batch.rows_quarantined, batch.rows_erased)
        if batch.rows_erased and tombstones is not None and result.path is not None:
            # an erased person's records came again: cut them out of the landing file too
            from cdp.erasure.lakefiles import redact_delivered

            redact_delivered(settings, tombstones, settings.channel(batch.channel),
                             result.path, batch.batch_id)
    finally:
        if result.staging is not None:
            shutil.rmtree(result.staging, ignore_errors=True)


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
        "rows_erased": batch.rows_erased,
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


def _new_staging_dir(parent: Path) -> Path:
    """A private folder beside the lake (same file system: the final moves are renames)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))


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
                     "rows_received", "rows_loaded", "rows_quarantined", "rows_erased"):
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
    erased = f" + {t.rows_erased:,} erased" if t.rows_erased else ""
    return (f"{t.files_loaded}/{t.files_seen} files loaded ({t.files_skipped} already loaded, "
            f"{t.files_failed} failed); {t.rows_received:,} rows = {t.rows_loaded:,} loaded + "
            f"{t.rows_quarantined:,} quarantined{erased}")
