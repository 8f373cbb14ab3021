"""`cdp`: the command line for people and scripts. Airflow tasks call the same functions.

Each command is thin: load settings, call one library function, print its summary. Heavy
libraries (Splink, dbt, Spark) are imported inside the commands so `cdp --help` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cdp.config import ConfigError, Settings, load_settings
from cdp.errors import CdpError
from cdp.summary import StepSummary

console = Console()


def print_summary(summary: StepSummary) -> None:
    table = Table(title=summary.title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in summary.rows:
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    for note in summary.notes:
        console.print(f"  {note}")


def _run(step: Callable[[], StepSummary]) -> StepSummary:
    try:
        summary = step()
    except (CdpError, ConfigError) as exc:
        # A step that failed part-way still says what it did (e.g. the files that did load).
        if partial := getattr(exc, "summary", None):
            print_summary(partial)
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    print_summary(summary)
    if not summary.ok:
        sys.exit(1)
    return summary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: $CDP_CONFIG or the nearest cdp.yaml).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Customer data platform: ingest channels, resolve identities, build segments."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.obj.get("config_path"))
    except ConfigError as exc:
        console.print(f"[bold red]config error:[/] {exc}")
        sys.exit(2)


@cli.command()
@click.option("--people", default=2000, show_default=True, help="How many people to simulate.")
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same data).")
@click.option("--noise", default=1.0, show_default=True,
              help="Noise multiplier: 0 is clean data, 1 realistic, 2 very dirty.")
@click.pass_context
def generate(ctx: click.Context, people: int, seed: int, noise: float) -> None:
    """Realistic demo data for every channel, plus a separate ground-truth file."""
    settings = _settings(ctx)
    from cdp.generate import generate as run_generate
    _run(lambda: run_generate(settings, people=people, seed=seed, noise=noise))


@cli.command()
@click.option("--channel", "channels", multiple=True, help="Only these channels (repeatable).")
@click.pass_context
def ingest(ctx: click.Context, channels: tuple[str, ...]) -> None:
    """Landing files -> raw lake + quarantine, with a load log."""
    settings = _settings(ctx)
    from cdp.ingest import ingest as run_ingest
    _run(lambda: run_ingest(settings, channels=list(channels) or None))


@cli.command()
@click.pass_context
def resolve(ctx: click.Context) -> None:
    """Identity resolution -> customers and golden profiles."""
    settings = _settings(ctx)
    from identity import resolve as run_resolve
    _run(lambda: run_resolve(settings))


@cli.command()
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Truth file (source, source_record_id, entity_id); CSV or Parquet. "
                   "Default: the generator's truth file.")
@click.pass_context
def evaluate(ctx: click.Context, truth: Path | None) -> None:
    """Score the current clustering against a truth file."""
    settings = _settings(ctx)
    from identity import evaluate as run_evaluate
    _run(lambda: run_evaluate(settings, truth or settings.resolved_paths.truth))


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def explain(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Why two records are (not) linked, or what makes up a customer.

    \b
    cdp explain web_orders:W000123 pos_transactions:P000456
    cdp explain C00000042
    """
    if len(refs) not in (1, 2):
        raise click.UsageError("give one customer id, or two records as channel:record_id")
    settings = _settings(ctx)
    from identity import explain_customer, explain_records
    if len(refs) == 1:
        _run(lambda: explain_customer(settings, refs[0]))
    elif len(refs) == 2:
        _run(lambda: explain_records(settings, refs[0], refs[1]))


@cli.command()
@click.option("--select", default=None, help="dbt node selection, e.g. 'marts'.")
@click.pass_context
def build(ctx: click.Context, select: str | None) -> None:
    """dbt build of the warehouse models and segments."""
    settings = _settings(ctx)
    from cdp.build import build as run_build
    _run(lambda: run_build(settings, select=select))


@cli.command()
@click.argument("stage", type=click.Choice(["raw", "identity", "marts", "all"]), default="all")
@click.option("--channel", default=None, help="Raw stage only: just this channel.")
@click.option("--confirm", is_flag=True,
              help="Marts stage: accept new segment sizes after a person checked them.")
@click.pass_context
def validate(ctx: click.Context, stage: str, channel: str | None, confirm: bool) -> None:
    """Great Expectations gates, by stage (Data Docs in {artefacts}/data_docs)."""
    settings = _settings(ctx)
    from cdp.gates import run_gate

    for name in ("raw", "identity", "marts") if stage == "all" else (stage,):
        _run(lambda name=name: run_gate(settings, name, channel=channel if name == "raw" else None,
                                        confirm=confirm and name == "marts"))


@cli.command()
@click.option("--segment", "-s", "segments", multiple=True, help="Only these segments.")
@click.option("--destination", "-d", "destinations", multiple=True,
              help="Only these destinations (names from cdp.yaml activation.destinations).")
@click.option("--full", is_flag=True, help="Resend every member (still removes those who left).")
@click.option("--dry-run", is_flag=True, help="Show counts and a hashed sample; send nothing.")
@click.pass_context
def sync(ctx: click.Context, segments: tuple[str, ...], destinations: tuple[str, ...],
         full: bool, dry_run: bool) -> None:
    """Reverse-ETL of segment membership to destinations (adds and removes only)."""
    settings = _settings(ctx)
    from cdp.activation import sync as run_sync
    from cdp.gates import activation_allowed

    allowed, reason = activation_allowed(settings)
    if not allowed and not dry_run:
        console.print(f"[bold red]error:[/] activation stopped: {reason}")
        sys.exit(1)
    _run(lambda: run_sync(settings, segments=list(segments) or None,
                          destinations=list(destinations) or None, full=full, dry_run=dry_run))


@cli.command()
@click.option("--people", default=2000, show_default=True,
              help="People to generate when the landing area is empty.")
@click.option("--seed", default=42, show_default=True)
@click.pass_context
def run(ctx: click.Context, people: int, seed: int) -> None:
    """The whole pipeline on the configured engine: generate (if empty) -> ingest -> resolve ->
    gates -> evaluate (if a truth file exists) -> build -> gates -> sync."""
    settings = _settings(ctx)
    from cdp.pipeline import headline, run_pipeline

    def on_error(exc: Exception) -> None:
        if partial := getattr(exc, "summary", None):
            print_summary(partial)
        console.print(f"[bold red]error:[/] {exc}")

    started = time.perf_counter()
    summaries = run_pipeline(settings, people=people, seed=seed, on_step=print_summary,
                             on_error=on_error)
    final = headline(summaries)
    console.rule("[bold]cdp run" + (" finished" if final.ok else " stopped"))
    final.add("steps", f"{', '.join(summaries)} in {time.perf_counter() - started:,.1f} s")
    final.add("warehouse", str(settings.resolved_paths.warehouse))
    print_summary(final)
    if not final.ok:
        sys.exit(1)


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
