"""The dbt project as Airflow tasks, through astronomer-cosmos.

Rendered from dbt's manifest (`LoadMode.DBT_MANIFEST`): parsing the DAG file reads one JSON
file instead of running dbt, so it stays fast. Each model is one task that runs `dbt build`
on that model, i.e. the model and then its tests (`TestBehavior.BUILD`); a failing test fails
that task and stops everything downstream of the model.

Tests that read several models (relationships, consent checks, singular tests) run with the
model task where every other model they read is already built (dbt's `buildable` indirect
selection). The few that have no such model (e.g. `fct_orders` -> `dim_customers`, two
siblings) run in one `cross_model_tests` task after the whole group. So every test of the
project runs exactly once per DAG run, as soon as its inputs exist.

The manifest comes from `dbt parse` (see dags/README.md): `$CDP_DBT_MANIFEST` when set,
else `<dbt project>/target/manifest.json`. Re-run `dbt parse` after changing the dbt project.

dbt reads its paths (warehouse file, lake) from the same `CDP_*` environment variables that
`cdp build` sets, computed from cdp.yaml by `cdp.build`, so both runs target the same tables.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from cdp.config import Settings

MANIFEST_ENV = "CDP_DBT_MANIFEST"
# Cosmos can emit one Asset per dbt model (from OpenLineage metadata, ~2 s per task). On by
# default; `CDP_DBT_MODEL_ASSETS=false` turns it off (the gated segment assets stay).
MODEL_ASSETS_ENV = "CDP_DBT_MODEL_ASSETS"


def manifest_path(settings: Settings) -> Path:
    if env := os.environ.get(MANIFEST_ENV):
        return Path(env)
    return settings.dbt_project_dir / "target" / "manifest.json"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The CDP_* variables the dbt profile and sources read (same values as `cdp build`)."""
    from cdp.build import dbt_env_vars

    return dbt_env_vars(settings)


def _checked_manifest(settings: Settings) -> Path:
    manifest = manifest_path(settings)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"no dbt manifest at {manifest}: run `dbt parse --project-dir "
            f"{settings.dbt_project_dir} --profiles-dir {settings.dbt_project_dir}` "
            f"(or set {MANIFEST_ENV}); see dags/README.md")
    return manifest


def _profile_config(settings: Settings) -> Any:
    from cosmos import ProfileConfig

    return ProfileConfig(
        profile_name="cdp",
        target_name=settings.warehouse.target,
        profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
    )


def model_assets_enabled() -> bool:
    return os.environ.get(MODEL_ASSETS_ENV, "true").strip().lower() not in ("0", "false", "no")


def dbt_task_group(settings: Settings, group_id: str = "dbt", **operator_args: Any) -> Any:
    """A cosmos `DbtTaskGroup` of the whole project, one `dbt build` task per model."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        TestBehavior,
        TestIndirectSelection,
    )

    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=settings.dbt_project_dir,
            manifest_path=_checked_manifest(settings),
            project_name="cdp",
            env_vars=dbt_environment(settings),
            install_dbt_deps=False,
        ),
        profile_config=_profile_config(settings),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.BUILDABLE,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            emit_datasets=model_assets_enabled(),
            enable_owner_inheritance=False,  # the DAG's owner, not dbt's meta
        ),
        operator_args=operator_args,
    )


def cross_model_tests(settings: Settings, task_id: str = "cross_model_tests",
                      **operator_args: Any) -> Any | None:
    """One `dbt test` task for the tests no single model task can run (None if there are none)."""
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtTestLocalOperator

    names = orphan_tests(str(_checked_manifest(settings)))
    if not names:
        return None
    return DbtTestLocalOperator(
        task_id=task_id,
        project_dir=str(settings.dbt_project_dir),
        profile_config=_profile_config(settings),
        invocation_mode=InvocationMode.DBT_RUNNER,
        install_deps=False,
        select=" ".join(names),
        env=dbt_environment(settings),
        emit_datasets=model_assets_enabled(),
        **operator_args,
    )


@functools.cache
def orphan_tests(manifest: str) -> tuple[str, ...]:
    """Tests reading several nodes where no parent model has all the others as ancestors.

    Under `buildable` indirect selection, a test runs with model M when each of its other
    parents is M's ancestor; these tests match no model and would otherwise never run.
    """
    data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    parents: dict[str, list[str]] = data.get("parent_map", {})

    @functools.cache
    def ancestors(node: str) -> frozenset[str]:
        found: set[str] = set()
        for parent in parents.get(node, []):
            found.add(parent)
            found |= ancestors(parent)
        return frozenset(found)

    orphans = []
    for node in data.get("nodes", {}).values():
        reads = set(node.get("depends_on", {}).get("nodes", []))
        if node.get("resource_type") != "test" or len(reads) < 2:
            continue
        if not any(model.startswith("model.") and reads - {model} <= ancestors(model)
                   for model in reads):
            orphans.append(node["name"])
    return tuple(sorted(orphans))
