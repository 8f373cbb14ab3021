"""Ingestion on Spark (`engine: spark`): landing files are read and validated by Spark tasks.

The design keeps one copy of the rules: each Spark task runs `cdp.ingest.runner.stage_file`
(the same readers, converters, quarantine reasons and batch checks as the local path) on one
landing file, writing the batch's raw and quarantine Parquet into a private staging folder
beside the lake. The driver then commits the staged batches in landing-file order with the local
path's commit protocol (move into the lake, load-log entry last), so the lake, the quarantine,
the load log, idempotency by content and atomicity are those of `cdp ingest` by construction.

What Spark adds is parallelism across files: one task per file, as many at once as the cluster
has cores. A file is one batch (validated as a whole: duplicate keys, quarantine share), so a
single huge file is one task; deliver large extracts as several files. Executors need the `cdp`
package installed and the landing folder and the lake on a file system they share with the
driver (the lake is POSIX paths; see jobs/README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.config import Channel, Settings
from cdp.ingest.runner import FileResult

if TYPE_CHECKING:
    from cdp.erasure import Tombstones


def stage_on_spark(settings: Settings, work: list[tuple[Channel, Path, str]],
                   committed: dict[str, str],
                   tombstones: Tombstones | None = None) -> list[FileResult]:
    """Stage every (channel, landing file, relative path) of `work` in a Spark task of its own;
    the results in the order of `work` (nothing is committed here)."""
    if not work:
        return []
    from cdp.spark import get_session

    spark = get_session(settings, "cdp-ingest")
    items = [(i, channel.name, str(path), relative)
             for i, (channel, path, relative) in enumerate(work)]
    # `_ingested_at` orders versions of a record (the latest wins downstream). Files are staged
    # in parallel, so their clocks would not follow the landing order the local ingest follows:
    # each file gets the run's start plus its position, in microseconds, instead.
    started = datetime.now(UTC).replace(tzinfo=None)

    def stage(item: tuple[int, str, str, str]) -> tuple[int, FileResult]:
        from cdp.ingest.runner import stage_file

        index, channel, path, relative = item
        return index, stage_file(settings, settings.channel(channel), Path(path), relative,
                                 committed, tombstones,
                                 ingested_at=started + timedelta(microseconds=index))

    spark.sparkContext.setJobDescription(f"cdp ingest: stage {len(items)} landing file(s)")
    results = (spark.sparkContext.parallelize(items, numSlices=len(items))
               .map(stage).collect())
    return [result for _, result in sorted(results, key=lambda pair: pair[0])]
