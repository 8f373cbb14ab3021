"""The Airflow Assets that chain the CDP DAGs, all derived from the configuration.

    raw_<channel>     file://<lake>/raw/<channel>          ingestion DAG of that channel
    identity          <warehouse>/identity                 identity DAG, after its gates
    segment_<name>    <warehouse>/main/segment_<name>      warehouse DAG, after the mart gates

Names are stable; URIs say where the data lives (they follow the configured paths).
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import yaml
from airflow.sdk import Asset

from cdp import lake
from cdp.config import Settings

IDENTITY_SCHEMA = "identity"
MARTS_SCHEMA = "main"


def raw_asset(settings: Settings, channel: str) -> Asset:
    return Asset(name=f"raw_{channel}", uri=lake.raw_dir(settings, channel).as_uri())


def raw_assets(settings: Settings) -> list[Asset]:
    return [raw_asset(settings, name) for name in settings.channels]


def any_of(assets: list[Asset]) -> Asset:
    """`a | b | c`: a run starts as soon as any of them has a new event."""
    return functools.reduce(operator.or_, assets)


def identity_asset(settings: Settings) -> Asset:
    return Asset(name="identity", uri=warehouse_uri(settings, IDENTITY_SCHEMA))


def segment_asset(settings: Settings, segment: str) -> Asset:
    return Asset(name=f"segment_{segment}",
                 uri=warehouse_uri(settings, MARTS_SCHEMA, f"segment_{segment}"))


def segment_assets(settings: Settings) -> list[Asset]:
    return [segment_asset(settings, name) for name in segment_names(settings)]


def segment_of(asset_name: str) -> str | None:
    """`segment_lapsed_customers` -> `lapsed_customers` (None for other assets)."""
    return asset_name.removeprefix("segment_") if asset_name.startswith("segment_") else None


def segment_names(settings: Settings) -> list[str]:
    """The segment registry: `vars.segments` of the dbt project (one place, see dbt_project.yml)."""
    path = Path(settings.dbt_project_dir) / "dbt_project.yml"
    project = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [str(name) for name in (project.get("vars") or {}).get("segments") or []]


def warehouse_uri(settings: Settings, schema: str, table: str | None = None) -> str:
    """`duckdb:///abs/warehouse.duckdb/<schema>[/<table>]`; else `<target>://<project>/...`."""
    target = settings.warehouse.target
    if target == "duckdb":
        base = f"duckdb://{settings.resolved_paths.warehouse.as_posix()}"
    else:
        base = f"{target}://{settings.project}"
    return f"{base}/{schema}" + (f"/{table}" if table else "")
