"""The explorer's routes through Starlette's test client, over a real warehouse built by the
pipeline (tests/web/conftest.py): search, customer 360, explain, segments and export, quality,
KPIs, masking, errors, and the token and host rules."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from cdp.cli import cli
from cdp.config import load_settings
from cdp.gates.masking import mask_value
from cdp.web import create_app
from identity.text import upper
from tests.web.conftest import Person, Warehouse

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> TestClient:
    return TestClient(create_app(warehouse.settings), base_url=BASE)


def _section(html: str, element_id: str) -> str:
    """The HTML of the table (or block) with this id."""
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{element_id}"
    return match.group(2)


def _query(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse.settings.resolved_paths.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# --- search --------------------------------------------------------------------------------

def test_search_by_a_differently_formatted_phone_finds_the_customer_masked(
        client: TestClient, person: Person) -> None:
    response = client.get("/", params={"q": person.phone_typed})
    assert response.status_code == 200
    results = _section(response.text, "results")
    assert f"/customers/{person.customer_id}" in results
    assert "phone" in results  # matched on
    # lists mask: the stored E.164 number and email never appear, their masked forms do
    assert person.phone not in response.text
    assert mask_value(person.phone, pii=True) in results
    assert person.email not in response.text
    assert mask_value(person.email, pii=True) in results


def test_search_by_email_as_typed_differently(client: TestClient, person: Person) -> None:
    typed = f"  {person.email.upper()}  "
    response = client.get("/", params={"q": typed})
    results = _section(response.text, "results")
    assert f"/customers/{person.customer_id}" in results
    assert person.email not in results and mask_value(person.email, pii=True) in results


def test_search_by_a_masked_value_copied_from_a_list(client: TestClient,
                                                    person: Person) -> None:
    for masked in (mask_value(person.email, pii=True), mask_value(person.phone, pii=True)):
        response = client.get("/", params={"q": masked})
        results = _section(response.text, "results")
        assert f"/customers/{person.customer_id}" in results
        assert "masked" in results
        assert person.email not in response.text and person.phone not in response.text


def test_search_by_name_in_turkish_capitals(client: TestClient, person: Person) -> None:
    typed = upper(f"{person.first_name} {person.last_name}", turkish=True)
    response = client.get("/", params={"q": typed})
    results = _section(response.text, "results")
    assert f"/customers/{person.customer_id}" in results
    assert "name" in results
    assert person.last_name not in results  # names are masked in lists too
    assert f"{person.last_name[0]}***" in results


def test_search_by_customer_id_and_by_an_order_number(client: TestClient, warehouse: Warehouse,
                                                      person: Person) -> None:
    response = client.get("/", params={"q": person.customer_id.lower()})
    assert f"/customers/{person.customer_id}" in _section(response.text, "results")
    assert "customer id" in response.text

    source, record_id, customer_id = _query(warehouse, """
        select source, source_record_id, customer_id from identity.identity_clusters
        where source = 'pos_transactions' order by source_record_id limit 1""")[0]
    response = client.get("/", params={"q": record_id})
    results = _section(response.text, "results")
    assert f"/customers/{customer_id}" in results
    assert f"source record {source}" in results


def test_search_without_a_match_or_input(client: TestClient) -> None:
    response = client.get("/", params={"q": "Zzyzxqwv Qqqqzz"})
    assert response.status_code == 200 and 'id="no-results"' in response.text
    response = client.get("/")
    assert response.status_code == 200 and 'id="results"' not in response.text


# --- customer 360 --------------------------------------------------------------------------

def test_customer_page_shows_the_360_in_full(client: TestClient, warehouse: Warehouse,
                                             person: Person) -> None:
    response = client.get(f"/customers/{person.customer_id}")
    assert response.status_code == 200
    html = response.text
    golden = _section(html, "golden")
    # the one page with personal data in full, each value with the channel it came from
    assert person.phone in golden and person.email in golden
    phone_source = _query(warehouse, "select phone_source from identity.golden_profiles "
                                     "where customer_id = ?", [person.customer_id])[0][0]
    assert phone_source in golden
    # linked source records, per channel: every channel of the customer has its section
    shown = set(re.findall(r'data-channel="([^"]+)"', _section(html, "linked-records")))
    assert shown == set(person.channels) and len(shown) >= 3
    # why linked: rule links and the cross-channel Splink link with per-comparison weights
    links = _section(html, "links")
    assert "splink" in links and "explain" in links
    contributions = re.search(r'<table class="contributions">(.*?)</table>', html, re.S)
    assert contributions and "prior" in contributions.group(1)
    assert "first_name" in contributions.group(1)
    assert 'data-figure="' in html  # waterfall and timeline charts
    # timeline, consent and segments from the marts
    timeline_rows = _query(warehouse, "select count(*) from fct_interactions "
                                      "where customer_id = ?", [person.customer_id])[0][0]
    assert timeline_rows > 0 and f"({timeline_rows:,} interactions)" in html
    consent = _section(html, "consent")
    assert all(channel in consent for channel in ("email", "sms", "ads"))
    segments = [r[0] for r in _query(warehouse, "select segment from segment_membership "
                                                "where customer_id = ?", [person.customer_id])]
    for segment in segments:
        assert f"/segments/{segment}" in html
    assert 'id="history"' in html  # merge/split history (its own test below)


def test_unknown_customer_is_a_404_page(client: TestClient) -> None:
    response = client.get("/customers/CNOSUCHCUSTOMER")
    assert response.status_code == 404
    assert "no customer CNOSUCHCUSTOMER" in response.text


def test_explain_page_gives_the_per_comparison_weights(client: TestClient,
                                                       warehouse: Warehouse,
                                                       person: Person) -> None:
    record_l, record_r = _query(warehouse, """
        select l.record_l, l.record_r from identity.identity_links l
        join identity.identity_records a on a.record_key = l.record_l
        where l.link_type = 'splink' and a.customer_id = ? limit 1""",
                                [person.customer_id])[0]
    response = client.get("/explain", params={"a": record_l, "b": record_r})
    assert response.status_code == 200
    table = _section(response.text, "explanation")
    assert "Splink match weight" in table and "prior" in table and "first_name" in table
    assert f"/customers/{person.customer_id}" in table
    assert person.email not in response.text  # cdp explain masks identifiers

    response = client.get("/explain", params={"a": "web_orders:NOPE", "b": record_r})
    assert response.status_code == 404 and "has no customer" in response.text


# --- segments ------------------------------------------------------------------------------

def test_segment_list_shows_sizes_eligibility_and_last_sync(client: TestClient,
                                                            warehouse: Warehouse) -> None:
    response = client.get("/segments")
    assert response.status_code == 200
    table = _section(response.text, "segment-list")
    sizes = dict(_query(warehouse, "select segment, count(distinct customer_id) "
                                   "from segment_membership group by 1"))
    assert sizes
    synced = dict(_query(warehouse, "select segment, strftime(max(started_at), '%Y-%m-%d %H:%M') "
                                    "from activation.sync_runs group by 1"))
    for segment, size in sizes.items():
        row = re.search(rf'href="/segments/{segment}">.*?</tr>', table, re.S).group(0)
        assert f'<td class="num">{size:,}</td>' in row
        if segment in synced:  # the pipeline's sync shows as the last sync
            assert "never-synced" not in row and synced[segment] in row
    assert 'data-figure="' in response.text


def test_segment_page_masks_members_and_counts_consent(client: TestClient,
                                                       warehouse: Warehouse) -> None:
    segment, size = _query(warehouse, """
        select segment, count(*) from segment_membership group by 1 order by 2 desc limit 1""")[0]
    response = client.get(f"/segments/{segment}")
    assert response.status_code == 200
    html = response.text
    members = _section(html, "members")
    assert members.count('class="member"') == min(size, 25)
    emails = [r[0] for r in _query(warehouse, """
        select p.email from segment_membership m join dim_customers p using (customer_id)
        where m.segment = ? and p.email is not null""", [segment])]
    assert emails
    assert not [e for e in emails if e in html]  # no member's email in full
    assert "***@" in members
    # eligibility per purpose, from activation's own rule
    email_ok = _query(warehouse, """
        select count(distinct m.customer_id) from segment_membership m
        join dim_customers p using (customer_id) where m.segment = ? and p.email_opt_in""",
                      [segment])[0][0]
    assert re.search(rf'<div class="value">{email_ok:,}</div><div class="label">may receive '
                     r'email</div>', html)
    assert 'id="size-history"' in html and 'data-figure="' in html
    assert "<summary>dbt model" in html  # the definition


def test_unknown_segment_is_a_404(client: TestClient) -> None:
    assert client.get("/segments/no_such_segment").status_code == 404
    assert client.get("/segments/no_such_segment/export.csv").status_code == 404


def test_segment_export_has_contact_fields_of_contactable_members(
        client: TestClient, warehouse: Warehouse) -> None:
    segment, channel = _query(warehouse, """
        select segment, any_value(activation_channel) from segment_membership
        where activation_channel = 'email' group by 1 order by count(*) desc limit 1""")[0]
    expected = {r[0]: r[1] for r in _query(warehouse, """
        select distinct m.customer_id, p.email from segment_membership m
        join dim_customers p using (customer_id)
        where m.segment = ? and p.email_opt_in""", [segment])}
    response = client.get(f"/segments/{segment}/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"segment_{segment}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["customer_id"]: r["email"] for r in rows} == expected
    assert all(r["email_opt_in"] == "True" for r in rows)
    assert any(r["phone"].startswith("+90") for r in rows)  # E.164 kept, not "'"-escaped

    masked = client.get(f"/segments/{segment}/export.csv", params={"masked": "1"})
    masked_rows = list(csv.DictReader(io.StringIO(masked.text)))
    assert len(masked_rows) == len(rows)
    assert not [e for e in expected.values() if e and e in masked.text]
    assert all("***" in r["email"] for r in masked_rows if r["email"])


# --- quality and KPIs ----------------------------------------------------------------------

def test_quality_page_has_the_figures_and_charts(client: TestClient,
                                                 warehouse: Warehouse) -> None:
    response = client.get("/quality")
    assert response.status_code == 200
    html = response.text
    precision = warehouse.evaluation["precision"]
    assert f"{precision:.4f}" in _section(html, "evaluation")
    per_channel = _section(html, "per-channel")
    for source, rows_in, customers in _query(warehouse, """
            select source, count(*) + coalesce(any_value(u.rows), 0), count(distinct customer_id)
            from identity.identity_clusters
            left join (select source, sum(n_rows) as rows from identity.identity_records
                       where status <> 'resolved' group by 1) u using (source)
            group by 1"""):
        cells = re.search(rf"<td>{source}</td>.*?</tr>", per_channel, re.S).group(0)
        numbers = re.findall(r'<td class="num">([\d,]+)</td>', cells)
        assert numbers[0] == f"{rows_in:,}" and numbers[2] == f"{customers:,}"
    assert html.count('data-figure="') == 4
    blocked = _section(html, "blocked")
    for (value,) in _query(warehouse, "select value from identity.identity_identifiers "
                                      "where class <> 'personal' and kind in ('email', 'phone')"):
        assert value not in blocked  # masked


def test_kpi_page_charts_the_marts(client: TestClient, warehouse: Warehouse) -> None:
    response = client.get("/kpis")
    assert response.status_code == 200
    assert response.text.count('data-figure="') == 5
    index = _query(warehouse, "select spend_index from omnichannel_comparison "
                              "where customer_type = 'omnichannel'")[0][0]
    assert f"{float(index):.2f}x" in response.text


def test_static_assets_are_served_locally(client: TestClient) -> None:
    js = client.get("/static/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/charts.js").status_code == 200
    page = client.get("/quality").text
    assert "://" not in "".join(re.findall(r'<script[^>]*src="([^"]+)"', page))


# --- errors, erasure, history ----------------------------------------------------------------

def test_an_unexpected_error_is_a_plain_page_and_logs_no_data(
        warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import cdp.web.app

    def broken(*args: object) -> None:
        raise RuntimeError("ayse.yilmaz@example.com")

    monkeypatch.setattr(cdp.web.app, "overview", broken)
    client = TestClient(create_app(warehouse.settings), base_url=BASE)
    with caplog.at_level("ERROR"):
        response = client.get("/segments")
    assert response.status_code == 500 and "RuntimeError" in response.text
    assert "ayse.yilmaz" not in response.text and "ayse.yilmaz" not in caplog.text
    assert "/segments failed: RuntimeError" in caplog.text


def test_no_warehouse_gives_a_clear_page(tmp_path: Path) -> None:
    from tests.conftest import write_config

    settings = load_settings(write_config(tmp_path), env={})
    response = TestClient(create_app(settings), base_url=BASE).get("/quality")
    assert response.status_code == 503
    assert "there is no warehouse" in response.text and "cdp run" in response.text


def test_a_writer_holding_the_warehouse_gives_a_try_again_page(client: TestClient,
                                                               warehouse: Warehouse) -> None:
    path = str(warehouse.settings.resolved_paths.warehouse)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(60)", path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        response = client.get("/segments")
        assert response.status_code == 503
        assert "being written by another process" in response.text
        assert "Traceback" not in response.text
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while client.get("/segments").status_code != 200:  # the lock goes with the process
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_erased_customer_and_merge_history(tmp_path: Path, warehouse: Warehouse,
                                           person: Person) -> None:
    """On a copy of the warehouse: the merge/split log shows on the profile; an erased customer
    is gone from search, profile and export."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse.settings.resolved_paths.warehouse, copy)
    settings = load_settings(warehouse.config, env={"CDP_WAREHOUSE": str(copy)})
    other, segment = _query(warehouse, """
        select customer_id, segment from segment_membership where customer_id <> ?
        order by customer_id limit 1""", [person.customer_id])[0]
    with duckdb.connect(str(copy)) as con:
        con.execute("""create table if not exists identity.customer_id_history (run_id varchar,
            changed_at timestamp, event varchar, customer_id varchar, other_customer_id varchar,
            source_records bigint, evidence varchar)""")
        con.execute("insert into identity.customer_id_history values "
                    "('r1', '2026-11-01 10:00', 'merge', ?, 'COLDCUSTOMER1', 3, 'email')",
                    [person.customer_id])
        con.execute("create table identity.erased_customers (customer_id varchar, "
                    "erased_at timestamp)")
        con.execute("insert into identity.erased_customers values (?, now())", [other])
    client = TestClient(create_app(settings), base_url=BASE)

    history = _section(client.get(f"/customers/{person.customer_id}").text, "history")
    assert "merge" in history and "COLDCUSTOMER1" in history and "2026-11-01 10:00" in history
    assert "/customers/COLDCUSTOMER1" in history

    assert client.get(f"/customers/{other}").status_code == 410
    assert f"/customers/{other}" not in client.get("/", params={"q": other}).text
    export = client.get(f"/segments/{segment}/export.csv").text
    assert other not in export
    assert other not in client.get(f"/segments/{segment}").text

    with duckdb.connect(str(copy)) as con:  # a warehouse from before the merge/split log
        con.execute("drop table identity.customer_id_history")
    page = client.get(f"/customers/{person.customer_id}")
    assert page.status_code == 200 and "customer_id_history does not exist" in page.text


# --- who may read --------------------------------------------------------------------------

def test_token_gate(warehouse: Warehouse) -> None:
    token = "correct-horse-battery"
    client = TestClient(create_app(warehouse.settings, token=token), base_url=BASE,
                        follow_redirects=False)
    denied = client.get("/segments")
    assert denied.status_code == 401 and "A token is needed" in denied.text
    assert client.get("/segments", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/segments",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/segments", params={"token": "nope"}).status_code == 401
    assert client.get("/segments/x/export.csv").status_code == 401  # exports too
    assert client.get("/static/style.css").status_code == 200  # no data in assets

    login = client.get("/segments", params={"token": token, "x": "1"})
    assert login.status_code == 303
    assert login.headers["location"] == "/segments?x=1"  # the token leaves the address bar
    cookie = login.headers["set-cookie"]
    assert token not in cookie and "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert client.get("/segments").status_code == 200  # the cookie now carries it
    client.cookies.clear()
    assert client.get("/segments").status_code == 401


def test_loopback_app_refuses_foreign_host_headers_and_sets_headers(
        warehouse: Warehouse) -> None:
    app = create_app(warehouse.settings, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 400
    response = TestClient(app, base_url="http://localhost:8000").get("/")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


def test_serve_off_loopback_needs_a_token(warehouse: Warehouse) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(warehouse.config), "serve", "--host",
                                 "0.0.0.0"], obj={}, env={"CDP_SERVE_TOKEN": None})
    assert result.exit_code == 1
    assert "give a token" in result.output
    result = runner.invoke(cli, ["--config", str(warehouse.config), "serve", "--host",
                                 "0.0.0.0"], obj={}, env={"CDP_SERVE_TOKEN": "short"})
    assert result.exit_code == 1 and "too short" in result.output
