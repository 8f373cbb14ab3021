"""The command line: one entry point, clear errors, non-zero exits."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cdp.cli import cli

COMMANDS = {
    "run", "generate", "ingest", "resolve", "evaluate", "explain", "build", "sync", "validate",
    "override", "forget", "serve", "report",
}


def test_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(cli, ["--help"], obj={})
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed >= COMMANDS


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.yaml"), "ingest"], obj={})
    assert result.exit_code == 2
    assert "config error" in result.output


def test_explain_needs_one_or_two_references() -> None:
    result = CliRunner().invoke(cli, ["explain", "a", "b", "c"], obj={})
    assert result.exit_code != 0
    assert "one customer id, or two records" in result.output


def test_summary_prints_brackets_literally(capsys) -> None:
    # rich would read "[email]" as markup and drop it; summaries carry file names and subjects
    from cdp.cli import print_summary
    from cdp.summary import StepSummary

    summary = StepSummary(title="ingest")
    summary.rows.append(("file", "crm [export].csv"))
    summary.notes.append("web [email]: 2 rows quarantined")
    print_summary(summary)
    out = capsys.readouterr().out
    assert "crm [export].csv" in out
    assert "web [email]: 2 rows quarantined" in out


def test_resolve_modes_exclude_each_other() -> None:
    result = CliRunner().invoke(cli, ["resolve", "--incremental", "--auto"], obj={})
    assert result.exit_code == 2
    assert "exclude each other" in result.output
