"""One real warehouse for the explorer and report tests, built once per session from the
shared demo lake (`demo_settings`: 600 generated people, ingested): the pipeline's own steps
(`cdp.pipeline.pipeline_steps`) resolve, evaluate, build, report and sync, without the gates.

They run in a child process: dbt's DuckDB connection outlives the build step in the process that
ran it, which would hold the warehouse's write lock for the whole session and keep `cdp serve`
(another process) out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import phonenumbers
import pytest

from cdp.config import Settings, load_settings
from tests.conftest import write_config

STEPS = ("resolve", "evaluate", "build", "report", "sync")
BUILD = """
import sys
from cdp.config import load_settings
from cdp.pipeline import pipeline_steps

settings = load_settings(sys.argv[1], env={})
wanted = sys.argv[2].split(",")
steps = dict(pipeline_steps(settings))
for name in wanted:
    summary = steps[name]()
    assert summary.ok, (name, summary.notes)
    print(name, "ok", flush=True)
"""


@dataclass
class Warehouse:
    settings: Settings
    config: Path
    evaluation: dict                  # {artefacts}/identity/evaluation.json
    resolve: dict                     # {artefacts}/identity/resolve_summary.json


@pytest.fixture(scope="session")
def warehouse(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    folder = tmp_path_factory.mktemp("web")
    demo = demo_settings.resolved_paths  # read-only: its landing, lake and truth
    config = write_config(folder, paths={
        "data_dir": str(folder / "data"), "landing": str(demo.landing), "lake": str(demo.lake),
        "truth": str(demo.truth)})
    settings = load_settings(config, env={})
    run = subprocess.run([sys.executable, "-c", BUILD, str(config), ",".join(STEPS)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    artefacts = settings.resolved_paths.artefacts / "identity"
    return Warehouse(
        settings=settings, config=config,
        evaluation=json.loads((artefacts / "evaluation.json").read_text(encoding="utf-8")),
        resolve=json.loads((artefacts / "resolve_summary.json").read_text(encoding="utf-8")))


@dataclass
class Person:
    """A customer seen in 3+ channels, with a phone and a cross-channel Splink link."""

    customer_id: str
    phone: str          # E.164, as stored
    phone_typed: str    # the same number as a person types it: national format with spaces
    email: str | None
    first_name: str
    last_name: str
    channels: list[str]


@pytest.fixture(scope="session")
def person(warehouse: Warehouse) -> Person:
    path = str(warehouse.settings.resolved_paths.warehouse)
    with duckdb.connect(path, read_only=True) as con:
        row = con.execute("""
            with cross_channel_model_links as (
                select a.customer_id
                from identity.identity_links l
                join identity.identity_records a on a.record_key = l.record_l
                join identity.identity_records b on b.record_key = l.record_r
                where l.link_type = 'splink' and a.customer_id = b.customer_id
                  and a.source <> b.source)
            select g.customer_id, g.phone, g.email, g.first_name, g.last_name,
                   list(distinct c.source order by c.source) as channels
            from identity.golden_profiles g
            join identity.identity_clusters c using (customer_id)
            where g.phone is not null and g.email is not null and g.first_name is not null
              and g.last_name is not null
              and g.customer_id in (select customer_id from cross_channel_model_links)
            group by all
            having count(distinct c.source) >= 3
            order by count(distinct c.source) desc, g.customer_id
            limit 1""").fetchone()
    assert row, "the generated data has no multi-channel customer with a phone"
    customer_id, phone, email, first, last, channels = row
    typed = phonenumbers.format_number(phonenumbers.parse(phone, None),
                                       phonenumbers.PhoneNumberFormat.NATIONAL)
    assert typed != phone and "+" not in typed
    return Person(customer_id, phone, typed, email, first, last, channels)
