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
from rich.markup import escape
from rich.table import Table

from cdp.config import ConfigError, Settings, load_settings
from cdp.errors import CdpError
from cdp.summary import StepSummary

console = Console()


def print_summary(summary: StepSummary) -> None:
    table = Table(title=summary.title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # long values (file paths) wrap, never cut to "…"
    for label, value in summary.rows:
        # values and notes are data (file names, gate subjects): never read as rich markup
        table.add_row(escape(label), f"{value:,}" if isinstance(value, int) else escape(str(value)))
    console.print(table)
    for note in summary.notes:
        console.print(f"  {escape(note)}")


def _run(step: Callable[[], StepSummary]) -> StepSummary:
    try:
        summary = step()
    except (CdpError, ConfigError) as exc:
        # A step that failed part-way still says what it did (e.g. the files that did load).
        if partial := getattr(exc, "summary", None):
            print_summary(partial)
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
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
        console.print(f"[bold red]config error:[/] {escape(str(exc))}")
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
@click.option("--incremental", is_flag=True,
              help="Link only newly ingested batches to the existing customers (a periodic "
                   "full run remains the reference).")
@click.option("--auto", is_flag=True,
              help="Incremental, unless a full run is due (none yet, older than "
                   "identity.full_resolve_every_days, or identity settings changed).")
@click.pass_context
def resolve(ctx: click.Context, incremental: bool, auto: bool) -> None:
    """Identity resolution -> customers and golden profiles, with stable customer ids."""
    if incremental and auto:
        raise click.UsageError("--incremental and --auto exclude each other")
    settings = _settings(ctx)
    from identity.schedule import resolve_in_mode
    mode = "auto" if auto else "incremental" if incremental else "full"
    _run(lambda: resolve_in_mode(settings, mode))


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
        console.print(f"[bold red]error:[/] activation stopped: {escape(str(reason))}")
        sys.exit(1)
    _run(lambda: run_sync(settings, segments=list(segments) or None,
                          destinations=list(destinations) or None, full=full, dry_run=dry_run))


@cli.command()
@click.option("--customer-id", "customer_ids", multiple=True,
              help="The customer to erase (repeatable: one person resolved as several).")
@click.option("--email", default=None, help="Erase the person with this email ('-': read it "
              "from standard input, out of shell history).")
@click.option("--phone", default=None, help="Erase the person with this phone ('-': stdin).")
@click.option("--reason", default=None, help="Why (e.g. a ticket number; no personal data).")
@click.option("--requested-by", default=None, help="Who handled the request.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("--reapply", is_flag=True,
              help="Erase every recorded request again (e.g. after restoring a backup).")
@click.pass_context
def forget(ctx: click.Context, customer_ids: tuple[str, ...], email: str | None,
           phone: str | None, reason: str | None, requested_by: str | None, dry_run: bool,
           reapply: bool) -> None:
    """Erase a person (GDPR / KVKK): identity store, golden profiles, lake, marts, exports;
    tombstones keep them out of later ingests; the next `cdp sync` removes them everywhere.
    Prints counts only, never the person's data."""
    settings = _settings(ctx)
    from cdp.erasure import forget as run_forget

    email, phone = (sys.stdin.readline().strip() if v == "-" else v
                    for v in (email, phone))
    _run(lambda: run_forget(settings, customer_ids=list(customer_ids), email=email,
                            phone=phone, reason=reason, requested_by=requested_by,
                            dry_run=dry_run, reapply=reapply))


@cli.group()
def override() -> None:
    """Steward overrides: must-link, cannot-link, shared identifiers (applied by every run).

    \b
    cdp override add must-link web_orders:W1 loyalty_members:L2 --author ayse --reason "..."
    cdp override add cannot-link C0A1B2C3D4E5F6A7B loyalty_members:L9 --author ... --reason ...
    cdp override add shared email - --author ... --reason "family email"   (value from stdin)
    cdp override list [--all]
    cdp override remove OV000001 --author ayse
    """


@override.command("add")
@click.argument("kind", type=click.Choice(["must-link", "cannot-link", "shared"]))
@click.argument("first")
@click.argument("second")
@click.option("--author", required=True, help="Who decided (kept with the override).")
@click.option("--reason", required=True, help="Why (a ticket, what was checked; no PII).")
@click.pass_context
def override_add(ctx: click.Context, kind: str, first: str, second: str, author: str,
                 reason: str) -> None:
    """Add an override: two records (channel:id) or customer ids, or for `shared` an
    identifier kind (email, phone, loyalty_id, login_id, device_id) and its value ('-': read
    it from standard input, out of shell history)."""
    settings = _settings(ctx)
    from identity.overrides import add_override

    if kind == "shared" and second == "-":
        second = sys.stdin.readline().strip()
    _run(lambda: add_override(settings, kind, first, second, author=author, reason=reason))


@override.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Also the removed ones.")
@click.pass_context
def override_list(ctx: click.Context, include_removed: bool) -> None:
    """List overrides (identifier values masked)."""
    settings = _settings(ctx)
    from identity.overrides import list_overrides

    _run(lambda: list_overrides(settings, include_removed=include_removed))


@override.command("remove")
@click.argument("override_id")
@click.option("--author", required=True, help="Who removes it (kept with the override).")
@click.pass_context
def override_remove(ctx: click.Context, override_id: str, author: str) -> None:
    """Deactivate an override (its row and audit trail stay); applies from the next run."""
    settings = _settings(ctx)
    from identity.overrides import remove_override

    _run(lambda: remove_override(settings, override_id, author=author))


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
        console.print(f"[bold red]error:[/] {escape(str(exc))}")

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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback requires a token.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--token", envvar="CDP_SERVE_TOKEN", default=None,
              help="Token every request must carry (env CDP_SERVE_TOKEN); required off loopback.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """The local, read-only customer-360 and segment explorer (web pages)."""
    settings = _settings(ctx)
    from cdp.web import serve as run_serve
    _run(lambda: run_serve(settings, host=host, port=port, token=token))


@cli.command()
@click.pass_context
def report(ctx: click.Context) -> None:
    """Write the static identity-quality report ({artefacts}/report/identity_quality.html)."""
    settings = _settings(ctx)
    from cdp.web import write_report
    _run(lambda: write_report(settings))


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
