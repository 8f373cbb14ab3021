"""Shared fixtures. Every test works in its own temporary data directory, never in ./data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cdp.config import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_CONFIG = REPO_ROOT / "cdp.yaml"


def write_config(folder: Path, **overrides: object) -> Path:
    """A copy of the project's cdp.yaml whose data lives in `folder`, with top-level overrides."""
    data = yaml.safe_load(PROJECT_CONFIG.read_text(encoding="utf-8"))
    data["paths"]["data_dir"] = str(folder / "data")
    data.setdefault("warehouse", {})["dbt_project_dir"] = str(REPO_ROOT / "dbt")
    data.update(overrides)
    path = folder / "cdp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Project settings with every path inside this test's temp directory."""
    return load_settings(write_config(tmp_path), env={})


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One small generated and ingested demo dataset, shared by the whole session (read-only!).

    Tests that change data must make their own copy or use `settings`.
    """
    from cdp.generate import generate
    from cdp.ingest import ingest

    folder = tmp_path_factory.mktemp("demo")
    settings = load_settings(write_config(folder), env={})
    generate(settings, people=600, seed=7)
    ingest(settings)
    return settings
