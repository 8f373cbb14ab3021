"""One erasure story on a real generated dataset, shared by the tests of this folder.

generate -> ingest -> resolve -> dbt build (models) -> sync (file destination) -> pick a
multi-channel customer who was delivered -> `cdp forget --dry-run` -> `cdp forget` -> sync ->
`cdp forget` again -> re-deliver old and reformatted data -> ingest -> resolve. Each step's
output, logs and the data directory's state are kept for the tests to check.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from dbt.adapters.duckdb.connections import DuckDBConnectionManager

from cdp.cli import cli
from cdp.config import Settings, load_settings
from cdp.summary import StepSummary
from identity import standardise as std
from tests.conftest import write_config

IDENTIFIERS = ("email", "phone", "loyalty_id", "login_id", "device_id")


@dataclass
class Person:
    customer_id: str
    first_name: str
    last_name: str
    email: str                      # normalised (identity.standardise)
    phone: str | None
    records: set[tuple[str, str]]   # (source, source record id)
    needles: set[str]               # every value that must be gone: ids, raw and normal forms
    delivered: set[str]             # values delivered to destinations (hashed keys)
    memberships: int                # (destination, segment) rows delivered for them


@dataclass
class Step:
    output: str = ""
    exit_code: int = 0
    logs: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Story:
    settings: Settings
    person: Person
    config: Path
    before_lake: dict[str, Any]             # facts of the lake before the erasure
    after_lake: dict[str, Any] = field(default_factory=dict)   # ... right after it
    request: dict[str, Any] = field(default_factory=dict)      # the register's request
    dry_run: Step = field(default_factory=Step)
    forget: Step = field(default_factory=Step)
    again: Step = field(default_factory=Step)
    sync: Step = field(default_factory=Step)
    ingest: Step = field(default_factory=Step)
    traces_after_forget: list[str] = field(default_factory=list)
    traces_at_end: list[str] = field(default_factory=list)
    resolved_after: dict[str, Any] = field(default_factory=dict)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "lake.lock"}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_cli(config: Path, *args: str, stdin: str | None = None) -> Step:
    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        result = CliRunner().invoke(cli, ["--config", str(config), *args], obj={}, input=stdin)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return Step(output=result.output, exit_code=result.exit_code, logs=handler.messages)


def run_library(step: Callable[[], StepSummary]) -> Step:
    """Run a library step as the CLI would, keeping its printed summary, logs and figures."""
    from cdp.cli import console, print_summary

    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        summary = step()
        with console.capture() as printed:
            print_summary(summary)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return Step(output=printed.get(), logs=handler.messages, figures=summary.figures)


def _choose(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str]:
    """A delivered customer with records in 4+ channels including web orders, a name no other
    profile has and every identifier their own (no shared or junk value)."""
    row = con.execute("""
        with sources as (
            select customer_id, count(distinct source) as n,
                   bool_or(source = 'web_orders') as web
            from identity.identity_clusters group by customer_id),
        names as (select first_name, last_name, count(*) as k
                  from identity.golden_profiles group by 1, 2),
        mixed as (
            select distinct r.customer_id from identity.identity_records r
            join identity.identity_identifiers i
              on (i.kind = 'email' and i.value = r.email)
              or (i.kind = 'phone' and i.value = r.phone)
              or (i.kind = 'device_id' and i.value = r.device_id)
              or (i.kind = 'login_id' and i.value = r.login_id)
              or (i.kind = 'loyalty_id' and i.value = r.loyalty_id)
            where i.class <> 'personal')
        select g.customer_id, g.first_name, g.last_name
        from identity.golden_profiles g
        join sources s using (customer_id)
        join names n on n.first_name = g.first_name and n.last_name = g.last_name
        where s.n >= 4 and s.web and n.k = 1 and g.email is not null and g.phone is not null
          and length(g.first_name) >= 3 and length(g.last_name) >= 3
          and g.customer_id in (select customer_id from activation.sync_state)
          and g.customer_id not in (select customer_id from mixed)
        order by s.n desc, g.customer_id limit 1""").fetchall()
    assert row, "the generated dataset has no suitable multi-channel customer"
    return row[0]


def _person(settings: Settings, con: duckdb.DuckDBPyConnection) -> Person:
    customer_id, first, last = _choose(con)
    records = set(con.execute(
        "select source, source_record_id from identity.identity_clusters where customer_id = ?",
        [customer_id]).fetchall())
    keys = {r[0] for r in con.execute(
        "select record_key from identity.identity_clusters where customer_id = ?",
        [customer_id]).fetchall()}
    own: set[str] = set()
    for kind in IDENTIFIERS:
        own |= {r[0] for r in con.execute(
            f"select distinct {kind} from identity.identity_records "
            f"where customer_id = ? and {kind} is not null", [customer_id]).fetchall()}
    email, phone = con.execute("select email, phone from identity.golden_profiles "
                               "where customer_id = ?", [customer_id]).fetchall()[0]
    delivered = {v for (p,) in con.execute(
        "select payload from activation.sync_state where customer_id = ?",
        [customer_id]).fetchall() for v in p.split("\x1f") if len(v) > 20}
    needles = {rid for _, rid in records} | keys | own
    # Every identifier as the channels wrote it, from the raw lake.
    region = settings.default_region
    for source in {s for s, _ in records}:
        channel = settings.channel(source)
        ids = {rid for s, rid in records if s == source}
        for path in (settings.resolved_paths.raw / source).glob("*/*.parquet"):
            table = pq.ParquetFile(path).read()
            keep = pc.is_in(pc.cast(table.column(channel.primary_key), pa.string()),
                            value_set=pa.array(sorted(ids)))
            for row in table.filter(keep).to_pylist():
                for kind, column in channel.identity.items():
                    value = row.get(column)
                    if kind in IDENTIFIERS and value and _normal(kind, value, region) in own:
                        needles.add(str(value).strip())
    memberships = con.execute("select count(*) from activation.sync_state "
                              "where customer_id = ?", [customer_id]).fetchall()[0][0]
    return Person(customer_id, first, last, email, phone, records, needles, delivered,
                  memberships)


def _normal(kind: str, value: Any, region: str) -> str | None:
    if kind == "email":
        return std.standardise_email(value)
    if kind == "phone":
        return std.standardise_phone(value, region)
    return std.standardise_code(value, kind)


_FOLD = str.maketrans("çğıİöşüÇĞÖŞÜâîûÂÎÛ", "cgiiosucgosuaiuaiu")


def fold(text: str) -> str:
    """Lower case without diacritics (Turkish letters), so `ÇİĞDEM` and `Cigdem` compare."""
    return text.translate(_FOLD).lower()


def traces(settings: Settings, person: Person) -> list[str]:
    """Everywhere the person still appears: every warehouse table and view, every Parquet file
    and every other file under the data directory (CSV in both encodings the channels use).
    A hit is one of their values, or their first and last name on one row or line."""
    needles = sorted(n for n in person.needles if len(n) >= 5)
    first, last = fold(person.first_name), fold(person.last_name)
    found: list[str] = []

    def check(where: str, lines: list[str]) -> None:
        text = "\n".join(lines)
        hits = [n for n in needles if n in text]
        if hits:
            found.append(f"{where}: {len(hits)} value(s)")
        folded = fold(text)
        if first in folded and last in folded and any(
                first in (f := fold(line)) and last in f for line in lines):
            found.append(f"{where}: the name")

    data = settings.resolved_paths.data_dir
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        for schema, table in con.execute(
                "select table_schema, table_name from information_schema.tables").fetchall():
            rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
            check(f"warehouse {schema}.{table}", [" | ".join(map(str, r)) for r in rows])
    for path in sorted(data.rglob("*")):
        if not path.is_file() or path == settings.resolved_paths.warehouse:
            continue
        where = path.relative_to(data).as_posix()
        if path.suffix == ".parquet":
            rows = pq.ParquetFile(path).read().to_pylist()
            check(where, [" | ".join(map(str, r.values())) for r in rows])
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # the POS channel writes windows-1254
            text = raw.decode("cp1254", "replace")
        check(where, text.splitlines())
    return sorted(set(found))


def _lake_facts(settings: Settings) -> dict[str, Any]:
    with duckdb.connect() as con:
        glob = str(settings.resolved_paths.raw / "web_orders" / "*" / "*.parquet")
        revenue, orders = con.execute(
            "select sum(order_total), count(*) from read_parquet(?)", [glob]).fetchall()[0]
    rows = {}
    for path in settings.resolved_paths.raw.rglob("*.parquet"):
        rows[path.relative_to(settings.resolved_paths.lake).as_posix()] = (
            pq.ParquetFile(path).metadata.num_rows)
    return {"web_revenue": revenue, "web_orders": orders, "raw_rows": rows}


@pytest.fixture(scope="package")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    from cdp.activation import sync
    from cdp.build import build
    from cdp.erasure import forget
    from cdp.generate import generate
    from cdp.ingest import ingest
    from identity import resolve

    folder = tmp_path_factory.mktemp("erasure")
    config = write_config(folder)
    settings = load_settings(config, env={})
    generate(settings, people=150, seed=11)
    ingest(settings)
    resolve(settings)
    build(settings, resource_types=("model",))
    # dbt-duckdb keeps its connection open in the process that ran it, and `cdp forget` then
    # (rightly) refuses to compact the file; `cdp build` and `cdp forget` are separate processes.
    DuckDBConnectionManager.close_all_connections()
    gc.collect()
    sync(settings)
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        person = _person(settings, con)
    pristine = folder / "pristine_landing"
    shutil.copytree(settings.resolved_paths.landing, pristine)
    data = settings.resolved_paths.data_dir
    story = Story(settings, person, config, _lake_facts(settings))

    before = snapshot(data)
    story.dry_run = run_library(lambda: forget(settings, customer_ids=[person.customer_id],
                                               dry_run=True))
    story.dry_run.before, story.dry_run.after = before, snapshot(data)

    story.forget = run_cli(config, "forget", "--email", "-", "--reason", "ticket 4711",
                           stdin=f"  {person.email.upper()}  \n")
    story.traces_after_forget = traces(settings, person)
    story.after_lake = _lake_facts(settings)
    (request,) = (settings.resolved_paths.meta / "erasure" / "requests").glob("*.json")
    story.request = json.loads(request.read_text(encoding="utf-8"))

    story.sync.figures = sync(settings).figures

    before_again = snapshot(data)
    story.again = run_cli(config, "forget", "--customer-id", person.customer_id)
    story.again.before, story.again.after = before_again, snapshot(data)

    _redeliver(settings, person, pristine)
    story.ingest = run_cli(config, "ingest")
    resolve(settings)
    with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
        story.resolved_after = {
            "records": con.execute(
                "select count(*) from identity.identity_records where email = ? or phone = ?",
                [person.email, person.phone]).fetchall()[0][0],
            "customer": con.execute(
                "select count(*) from identity.identity_clusters where customer_id = ?",
                [person.customer_id]).fetchall()[0][0],
        }
    story.traces_at_end = traces(settings, person)
    yield story
    shutil.rmtree(folder, ignore_errors=True)


NEW_WEB_ROW = ("W9999999999,2026-07-01T10:00:00,,new.person@example.com,Yeni,Kişi,05321112233,"
               ",,İstanbul,34000,TR,100.00,TRY,1,home,home_delivery,,true,false,false\n")


def _redeliver(settings: Settings, person: Person, pristine: Path) -> None:
    """(a) the old web export re-sent under a new name with one new row; (b) new files with the
    person's email and phone written differently, one row of which would be quarantined."""
    import phonenumbers

    landing = settings.resolved_paths.landing
    old = next((pristine / "web_orders").glob("*.csv")).read_text(encoding="utf-8")
    (landing / "web_orders" / "web_orders_resent.csv").write_text(
        old + NEW_WEB_ROW, encoding="utf-8")
    email = f" MAILTO:{person.email.upper()} "
    (landing / "email_subscribers" / "email_subscribers_new.csv").write_text(
        "subscriber_id,email,first_name,subscribed_at,status,language,opens_30d,clicks_30d,"
        "last_open_at,last_click_at\n"
        f"E900001,{email},{person.first_name},2026-08-01T10:00:00,subscribed,tr,1,0,,\n"
        f"E900002,{email},{person.first_name},not-a-date,subscribed,tr,1,0,,\n"
        "E900003,other.one@example.com,Other,2026-08-01T10:00:00,subscribed,tr,1,0,,\n",
        encoding="utf-8")
    assert person.phone is not None
    national = phonenumbers.format_number(phonenumbers.parse(person.phone),
                                          phonenumbers.PhoneNumberFormat.NATIONAL)
    (landing / "sms_contacts" / "sms_contacts_new.csv").write_text(
        "contact_id,msisdn,name,opt_in,opt_in_date,messages_sent,last_sent_at\n"
        f"S900001,{national},{person.first_name} {person.last_name},Y,2026-08-01,1,\n"
        "S900002,05321112299,Başka Biri,Y,2026-08-01,1,\n", encoding="utf-8")
