"""`cdp run`, the README's main command, end to end on a small generated dataset."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from cdp.cli import cli
from tests.conftest import write_config


def test_cdp_run_builds_every_stage_and_ends_with_a_summary(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "run", "--people", "300"], obj={})
    assert result.exit_code == 0, result.output
    assert "cdp run: summary" in result.output
    assert "accuracy vs truth" in result.output
    assert "quality gates" in result.output and "FAILED" not in result.output

    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb")) as con:
        customers = con.execute("select count(*) from identity.golden_profiles").fetchone()[0]
        clustered = con.execute("select count(*) from identity.identity_clusters").fetchone()[0]
        members = con.execute("select count(*) from segment_membership").fetchone()[0]
        loaded = con.execute(
            "select count(*) from read_parquet(?)",
            [str(tmp_path / "data" / "lake" / "raw" / "*" / "*" / "*.parquet")],
        ).fetchone()[0]
    assert 0 < customers < clustered
    assert members > 0
    # The generator's rows all reach the lake, and (almost) all of them a customer.
    truth_rows = sum(1 for _ in (tmp_path / "data" / "truth" / "ground_truth.csv").open()) - 1
    assert loaded == truth_rows
    assert clustered >= 0.99 * truth_rows


def test_failed_step_stops_the_run_with_a_clear_message(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    landing = tmp_path / "data" / "landing" / "web_orders"
    landing.mkdir(parents=True)
    (landing / "broken.csv").write_text("", encoding="utf-8")  # an empty file fails its batch
    result = CliRunner().invoke(cli, ["--config", str(config), "run"], obj={})
    assert result.exit_code == 1
    assert "broken.csv" in result.output
    assert "stopped at" in result.output
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()
