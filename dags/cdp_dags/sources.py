"""Pulls: copy a channel's new files from remote storage into its landing folder.

A channel is a *file drop* (the default) unless the Airflow Variable `cdp_source_<channel>`
names a remote folder, as JSON:

    AIRFLOW_VAR_CDP_SOURCE_WEB_ORDERS='{"uri": "s3://exports/web_orders/", "conn_id": "aws_cdp"}'

The folder is read through Airflow's ObjectStoragePath with that connection (S3, GCS, Azure,
SFTP... whatever fsspec filesystem the deployment installs), so credentials live in the Airflow
connection, never in code or in cdp.yaml. Files matching the file pattern of the channel's
`path` are copied atomically into `{landing}/<folder of path>/` unless a file of the same name
and size is already there; `cdp ingest` then loads them (it skips content it already loaded).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import PurePosixPath
from typing import Any

from cdp.config import Channel, Settings
from cdp.errors import CdpError
from cdp.io import atomic_path

log = logging.getLogger(__name__)

GLOB_CHARS = set("*?[")


def source_variable(channel: str) -> str:
    return f"cdp_source_{channel}"


def source_spec(channel: str) -> dict[str, Any] | None:
    """The channel's remote source from Airflow Variables, or None for a file drop."""
    from airflow.sdk import Variable

    spec = Variable.get(source_variable(channel), default=None, deserialize_json=True)
    if spec is None:
        return None
    if not isinstance(spec, dict) or not spec.get("uri"):
        raise CdpError(f"Airflow Variable {source_variable(channel)} must be JSON like "
                       '{"uri": "s3://bucket/folder/", "conn_id": "my_conn"}')
    return spec


def pull(settings: Settings, channel: Channel) -> dict[str, Any]:
    """Copy the channel's new remote files into landing; a file drop needs nothing."""
    spec = source_spec(channel.name)
    if spec is None:
        log.info("%s is a file drop: ingesting %s as delivered", channel.name,
                 settings.resolved_paths.landing / channel.path)
        return {"source": "file_drop", "copied": 0, "already_there": 0}

    from airflow.sdk import ObjectStoragePath

    folder, pattern = _split(channel)
    target_dir = settings.resolved_paths.landing / folder
    remote_dir = ObjectStoragePath(spec["uri"], conn_id=spec.get("conn_id"))
    copied = already = 0
    for remote in sorted(remote_dir.glob(pattern), key=lambda p: p.name):
        # Hidden and underscore files are uploads in progress or markers, as for ingest.
        if remote.name.startswith((".", "_")) or not remote.is_file():
            continue
        local = target_dir / remote.name
        if local.is_file() and local.stat().st_size == remote.stat().st_size:
            already += 1
            continue
        with atomic_path(local) as tmp, remote.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        copied += 1
    log.info("%s: pulled %d new file(s) from %s (%d already in landing)", channel.name, copied,
             remote_dir.protocol or "file", already)
    return {"source": "pull", "copied": copied, "already_there": already}


def _split(channel: Channel) -> tuple[str, str]:
    """`web_orders/*.csv` -> (`web_orders`, `*.csv`); the folder part must be a plain path."""
    path = PurePosixPath(channel.path)
    folder = str(path.parent)
    if GLOB_CHARS & set(folder):
        raise CdpError(f"channel {channel.name}: a pulled channel needs a path like "
                       f"'folder/*.csv' (no wildcard in the folder), got '{channel.path}'")
    return ("" if folder == "." else folder), path.name
