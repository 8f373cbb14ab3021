"""The warehouse built end to end on the shared demo data: generate -> ingest (session fixture
`demo_settings`, 600 people) -> identity.resolve -> cdp.build.build on DuckDB.

The demo lake is read-only: this configuration points at its landing, lake and truth and keeps
its own warehouse and artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from cdp.config import Settings, load_settings
from cdp.summary import StepSummary
from tests.conftest import write_config


@dataclass
class Built:
    settings: Settings
    summary: StepSummary

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.settings.resolved_paths.warehouse))
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params: list | None = None):
        return self.query(sql, params)[0][0]


def settings_on_demo_lake(demo_settings: Settings, folder: Path) -> Settings:
    """Settings reading the demo's landing / lake / truth, writing everything else to `folder`."""
    demo = demo_settings.resolved_paths
    folder.mkdir(parents=True, exist_ok=True)
    return load_settings(write_config(folder, paths={
        "data_dir": str(folder / "data"), "landing": str(demo.landing), "lake": str(demo.lake),
        "truth": str(demo.truth)}), env={})


@pytest.fixture(scope="session")
def built(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Built:
    from cdp.build import build
    from identity import resolve

    settings = settings_on_demo_lake(demo_settings, tmp_path_factory.mktemp("dbt"))
    resolve(settings)
    return Built(settings, build(settings))
