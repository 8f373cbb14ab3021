"""Fixtures for the gate tests: private copies of the shared demo data (which is read-only).

- `lake_copy`: the demo's generated + ingested data, copied into this test's folder.
- `chain`: once per session, the real pipeline in gate order on a copy of the demo data:
  raw gate -> identity.resolve -> identity gate -> cdp.build (dbt models) -> marts gate.
  Read-only too: `chain_copy` gives a test its own copy (warehouse, lake and gate state).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from cdp.config import Settings, load_settings
from cdp.summary import StepSummary
from tests.conftest import write_config


def copy_data(source: Settings, folder: Path) -> Settings:
    """Settings whose whole data directory is a copy of `source`'s."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_settings(write_config(folder), env={})
    shutil.copytree(source.resolved_paths.data_dir, settings.resolved_paths.data_dir)
    return settings


def execute(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    """Run SQL against a test's own warehouse copy (to break it on purpose)."""
    con = duckdb.connect(str(settings.resolved_paths.warehouse))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@dataclass
class Chain:
    settings: Settings
    summaries: dict[str, StepSummary]


@pytest.fixture
def lake_copy(demo_settings: Settings, tmp_path: Path) -> Settings:
    return copy_data(demo_settings, tmp_path / "copy")


@pytest.fixture(scope="session")
def chain(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    from cdp.build import build
    from cdp.gates import run_gate
    from identity import resolve

    settings = copy_data(demo_settings, tmp_path_factory.mktemp("gates_chain"))
    summaries = {"gate raw": run_gate(settings, "raw")}
    summaries["resolve"] = resolve(settings)
    summaries["gate identity"] = run_gate(settings, "identity")
    # Models only: dbt's own data tests run in tests/dbt; here the gates are under test.
    summaries["build"] = build(settings, resource_types=("model",))
    summaries["gate marts"] = run_gate(settings, "marts")
    return Chain(settings, summaries)


@pytest.fixture
def chain_copy(chain: Chain, tmp_path: Path) -> Settings:
    return copy_data(chain.settings, tmp_path / "copy")
