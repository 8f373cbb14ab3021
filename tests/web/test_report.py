"""The static identity-quality report: written by the pipeline and by `cdp report`,
self-contained (no external resource), with the figures and no personal data."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from click.testing import CliRunner

from cdp.cli import cli
from cdp.pipeline import headline
from cdp.web.report import report_path, write_report
from tests.web.conftest import Warehouse


def test_pipeline_step_writes_the_report_and_the_headline_names_it(
        warehouse: Warehouse) -> None:
    path = report_path(warehouse.settings)
    assert path.is_file()  # written by the pipeline's report step (conftest)
    summary = write_report(warehouse.settings)
    assert summary.figures["path"] == str(path)
    assert ("identity quality report", str(path)) in headline({"report": summary}).rows


def test_report_is_self_contained_with_figures_and_charts(warehouse: Warehouse) -> None:
    html = report_path(warehouse.settings).read_text(encoding="utf-8")
    # offline: no script, style or image is fetched from anywhere
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="', html)
    assert "plotly.js v" in html or "Plotly" in html  # the library, inlined
    assert html.count('<div class="chart"') == 4 + 5  # identity quality + channel KPIs
    evaluation = warehouse.evaluation
    assert f"{evaluation['precision']:.4f}" in html and f"{evaluation['recall']:.4f}" in html
    customers = warehouse.resolve["customers"]
    assert f"{customers:,}" in html
    assert "omnichannel vs single-channel spend" in html


def test_report_carries_no_personal_data(warehouse: Warehouse) -> None:
    html = report_path(warehouse.settings).read_text(encoding="utf-8")
    html = html[:html.index("<script>")]  # the content (the inlined scripts are libraries)
    with duckdb.connect(str(warehouse.settings.resolved_paths.warehouse), read_only=True) as con:
        values = con.execute("""
            select distinct v from (
                select unnest(emails) as v from identity.golden_profiles
                union all select unnest(phones) from identity.golden_profiles
                union all select unnest(loyalty_ids) from identity.golden_profiles
                union all select address from identity.golden_profiles
                union all select value from identity.identity_identifiers)
            where v is not null and length(v) >= 6""").fetchall()
    assert len(values) > 100
    leaked = [v for (v,) in values if v in html]
    assert not leaked, f"{len(leaked)} personal values in the report"


def test_cdp_report_command_rewrites_it_atomically(warehouse: Warehouse) -> None:
    path = report_path(warehouse.settings)
    before = path.stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["--config", str(warehouse.config), "report"], obj={})
    assert result.exit_code == 0, result.output
    assert "identity quality report" in result.output
    assert path.stat().st_mtime_ns > before
    assert [p.name for p in Path(path.parent).iterdir()] == [path.name]  # no temp left


def test_cdp_report_without_a_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    from tests.conftest import write_config

    result = CliRunner().invoke(cli, ["--config", str(write_config(tmp_path)), "report"],
                                obj={})
    assert result.exit_code == 1
    assert "no warehouse" in result.output
