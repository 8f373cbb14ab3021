"""The lake lock: `cdp ingest` holds it shared, `cdp forget` exclusively.

Without it an ingest that read the tombstones before a `cdp forget` recorded new ones could
commit the person's rows after forget had purged the lake. Ingests of different channels (one
Airflow task each) share the lock and run side by side; a forget waits for them and they wait
for it. An advisory `flock` on `{lake}/_meta/lake.lock`: local and NFSv4 file systems; the
kernel releases it when a process dies, so a crash never leaves the lake locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator

from cdp.config import Settings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def lake_lock(settings: Settings, exclusive: bool) -> Iterator[None]:
    path = settings.resolved_paths.meta / "lake.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the lake lock (%s)",
                     "an ingest is running" if exclusive else "an erasure is running")
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
