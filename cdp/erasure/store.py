"""The erasure register in the lake, `{lake}/_meta/erasure/` (no personal data in any of it):

    requests/<request_id>.json          one erasure request: when, matched by what, which
                                        customer ids (pseudonymous), status pending | done,
                                        counts per place
    tombstones/<request_id>.parquet     (kind, digest, key_check): keyed digests of the erased
                                        identifiers and source records (see keys.py)
    purged/<request_id>/<file>.parquet  per rewritten lake file: rows removed / anonymised, so a
                                        batch still reconciles: raw rows = loaded - removed
    landing_aliases/<sha256>.json       a redacted landing file's new content hash -> its
                                        channel and original batch id: re-ingesting it is a no-op

The register is written before anything is removed (a journal): an interrupted `cdp forget`
re-run finds its request and finishes it, even after the identity tables were already purged.
It lives in the lake, not the warehouse, so `cdp ingest` needs no warehouse and a rebuilt
warehouse gets `identity.erased_customers` back from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.io import atomic_path

TOMBSTONE_SCHEMA = pa.schema([
    ("kind", pa.string()),        # record | email | phone | loyalty_id | login_id | device_id
    ("digest", pa.string()),      # keyed BLAKE2b, hex (keys.py)
    ("key_check", pa.string()),   # keys.key_check of the key that made the digest
])
PURGE_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("place", pa.string()),       # raw | quarantine | landing
    ("channel", pa.string()),
    ("batch_id", pa.string()),    # the lake file's batch (its stem); the file's hash on landing
    ("file", pa.string()),        # relative to the lake (raw, quarantine) or landing
    ("rows_removed", pa.int64()),
    ("rows_anonymised", pa.int64()),
    ("purged_at", pa.timestamp("us")),
])


def erasure_dir(settings: Settings) -> Path:
    return settings.resolved_paths.meta / "erasure"


@dataclass
class Request:
    """One erasure request as recorded in the register."""

    request_id: str
    requested_at: str
    matched_by: str                       # customer_id | email | phone
    customer_ids: list[str] = field(default_factory=list)
    reason: str | None = None
    requested_by: str | None = None
    status: str = "pending"               # pending | done
    completed_at: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)

    def path(self, settings: Settings) -> Path:
        return erasure_dir(settings) / "requests" / f"{self.request_id}.json"

    def save(self, settings: Settings) -> None:
        with atomic_path(self.path(settings)) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")


def read_requests(settings: Settings) -> list[Request]:
    """Every recorded request, oldest first."""
    folder = erasure_dir(settings) / "requests"
    requests = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise CdpError(f"erasure request {path} is unreadable; restore it from a backup "
                           "(it is part of the erasure register)") from None
        requests.append(Request(**data))
    return sorted(requests, key=lambda r: (r.requested_at, r.request_id))


def write_tombstones(settings: Settings, request_id: str, check: str,
                     digests: dict[str, set[str]]) -> None:
    rows = [(kind, d) for kind in sorted(digests) for d in sorted(digests[kind])]
    table = pa.table({
        "kind": pa.array([k for k, _ in rows], pa.string()),
        "digest": pa.array([d for _, d in rows], pa.string()),
        "key_check": pa.array([check] * len(rows), pa.string()),
    }, schema=TOMBSTONE_SCHEMA)
    with atomic_path(erasure_dir(settings) / "tombstones" / f"{request_id}.parquet") as tmp:
        pq.write_table(table, tmp)


def read_tombstones(settings: Settings) -> tuple[dict[str, set[str]], set[str], dict[str, set]]:
    """(kind -> digests, key checks seen, request_id -> its digests) over every request."""
    folder = erasure_dir(settings) / "tombstones"
    digests: dict[str, set[str]] = {}
    checks: set[str] = set()
    per_request: dict[str, set] = {}
    for path in sorted(folder.glob("*.parquet")):
        try:
            table = pq.read_table(path, schema=TOMBSTONE_SCHEMA)
        except (pa.ArrowException, OSError):
            raise CdpError(f"tombstone file {path} is unreadable; restore it from a backup "
                           "(without it erased people could come back)") from None
        kinds = table.column("kind").to_pylist()
        values = table.column("digest").to_pylist()
        checks.update(table.column("key_check").unique().to_pylist())
        mine = per_request.setdefault(path.stem, set())
        for kind, value in zip(kinds, values, strict=True):
            digests.setdefault(kind, set()).add(value)
            mine.add((kind, value))
    return digests, checks, per_request


def write_purge(settings: Settings, request_id: str, place: str, channel: str, batch_id: str,
                file: str, removed: int, anonymised: int, at: datetime) -> None:
    """Record what one rewrite of a lake or landing file removed (idempotent per file)."""
    table = pa.table({
        "request_id": [request_id], "place": [place], "channel": [channel],
        "batch_id": [batch_id], "file": [file], "rows_removed": [removed],
        "rows_anonymised": [anonymised], "purged_at": [at],
    }, schema=PURGE_SCHEMA)
    name = hashlib.sha256(f"{place}\x1f{file}".encode()).hexdigest()[:24]
    with atomic_path(erasure_dir(settings) / "purged" / request_id / f"{name}.parquet") as tmp:
        pq.write_table(table, tmp)


def read_purges(settings: Settings) -> pa.Table:
    """Every purge record (empty, with its schema, when there is none)."""
    files = sorted((erasure_dir(settings) / "purged").glob("*/*.parquet"))
    if not files:
        return PURGE_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=PURGE_SCHEMA) for f in files])


def write_alias(settings: Settings, new_hash: str, channel: str, original: str, file: str,
                request_id: str) -> None:
    data = {"channel": channel, "original_batch_id": original, "file": file,
            "request_id": request_id}
    with atomic_path(erasure_dir(settings) / "landing_aliases" / f"{new_hash}.json") as tmp:
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")


def landing_aliases(settings: Settings) -> dict[str, str]:
    """Content hash of a redacted landing file -> its channel, for every redaction.

    `cdp ingest` treats these hashes as loaded: the redacted file holds nothing new."""
    aliases: dict[str, str] = {}
    for path in (erasure_dir(settings) / "landing_aliases").glob("*.json"):
        try:
            aliases[path.stem] = json.loads(path.read_text(encoding="utf-8"))["channel"]
        except (OSError, ValueError, KeyError):
            raise CdpError(f"landing alias {path} is unreadable; delete it and the redacted "
                           "landing file it names would load again (duplicating its rows)"
                           ) from None
    return aliases


def alias_targets(settings: Settings) -> dict[str, str]:
    """Content hash of a redacted landing file -> the batch id it was loaded as."""
    targets: dict[str, str] = {}
    for path in (erasure_dir(settings) / "landing_aliases").glob("*.json"):
        try:
            targets[path.stem] = json.loads(path.read_text(encoding="utf-8"))[
                "original_batch_id"]
        except (OSError, ValueError, KeyError):
            continue  # landing_aliases() reports it
    for alias, target in list(targets.items()):  # a file redacted twice: back to its batch
        seen = {alias}
        while target in targets and target not in seen:
            seen.add(target)
            target = targets[target]
        targets[alias] = target
    return targets
