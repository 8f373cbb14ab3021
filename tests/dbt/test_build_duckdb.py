"""The dbt project end to end on DuckDB: generated data -> ingest -> resolve -> cdp.build.build.

Asserts that dbt build is green and that the marts and segments mean what they say, checked
against the facts (orders, carts, consent) rather than against the models' own output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from cdp.build import _redact, build, generate_docs
from cdp.config import Settings
from cdp.errors import CdpError
from tests.dbt.conftest import Built, settings_on_demo_lake

REPO = Path(__file__).resolve().parents[2]
DBT_DIR = REPO / "dbt"
SEGMENTS = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())["vars"]["segments"]
CONSENT = {  # activation channel -> the dim_customers condition that allows it
    "email": "d.email_opt_in and d.email is not null",
    "sms": "d.sms_opt_in and d.phone is not null",
    "ads": "d.ads_opt_in and (d.email is not null or d.phone is not null)",
    "none": "true",
}


def _model_files() -> list[Path]:
    return sorted((DBT_DIR / "models").rglob("*.sql"))


def test_dbt_build_is_green_and_runs_every_node(built: Built) -> None:
    nodes = built.summary.figures["nodes"]
    assert built.summary.ok
    assert nodes["model"] == {"passed": len(_model_files()), "failed": 0, "skipped": 0,
                              "warned": 0}
    assert nodes["test"]["failed"] == nodes["test"]["skipped"] == 0
    assert nodes["test"]["passed"] >= 150
    assert nodes["unit_test"]["failed"] == 0 and nodes["unit_test"]["passed"] >= 7
    # the summary tells a person what was built
    labels = dict(built.summary.rows)
    assert labels["unit tests"].startswith(f"{nodes['unit_test']['passed']} passed")
    assert labels["dim_customers"] == built.scalar("select count(*) from dim_customers") > 0


def test_the_build_releases_the_warehouse_for_read_only_readers(built: Built) -> None:
    # dbt-duckdb keeps its database open for the whole process unless cdp.build closes it; a
    # read-only open of the same file in this process would then fail.
    con = duckdb.connect(str(built.settings.resolved_paths.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from dim_customers").fetchall()[0][0] > 0
    finally:
        con.close()


def test_every_segment_has_members_and_membership_unions_them(built: Built) -> None:
    rows = built.summary.figures["rows"]
    by_segment = dict(built.query(
        "select segment, count(*) from segment_membership group by segment"))
    for name in SEGMENTS:
        size = rows[f"segment_{name}"]
        assert size > 0, f"segment {name} is empty"
        assert by_segment[name] == size
    # a marketer's query works on the file directly
    assert built.scalar("select count(*) from main.segment_abandoned_cart") == rows[
        "segment_abandoned_cart"]


def test_abandoned_carts_have_a_cart_and_no_purchase_in_the_window(built: Built) -> None:
    as_of = built.scalar("select as_of_date from intermediate.int_as_of_date")
    # every member's cart is theirs, open or at checkout, recent, and no purchase followed it
    bad = built.query("""
        select s.customer_id
        from segment_abandoned_cart s
        left join intermediate.int_carts_identified c
          on c.cart_id = s.cart_id and c.customer_id = s.customer_id
        where c.cart_id is null
           or c.status not in ('open', 'checkout')
           or c.updated_at < ?::date - interval 14 day
           or exists (select 1 from fct_orders o
                      where o.customer_id = s.customer_id
                        and o.ordered_at between c.created_at
                                             and c.updated_at + interval 24 hour)""", [as_of])
    assert bad == []
    # the same rule written independently finds exactly the same customers
    expected = {r[0] for r in built.query("""
        select distinct c.customer_id
        from intermediate.int_carts_identified c
        join dim_customers d on d.customer_id = c.customer_id
        where c.status <> 'converted'
          and c.updated_at >= ?::date - interval 14 day
          and d.email_opt_in and d.email is not null
          and not exists (select 1 from fct_orders o
                          where o.customer_id = c.customer_id
                            and o.ordered_at >= c.created_at
                            and o.ordered_at <= c.updated_at + interval 24 hour)""", [as_of])}
    assert {r[0] for r in built.query("select customer_id from segment_abandoned_cart")} == \
        expected
    assert expected


def test_no_customer_is_in_a_segment_without_consent(built: Built) -> None:
    channels = dict(built.query(
        "select distinct segment, activation_channel from segment_membership"))
    assert set(channels.values()) <= set(CONSENT)
    assert {"email", "sms", "ads"} <= set(channels.values())
    for segment, channel in channels.items():
        violations = built.scalar(f"""
            select count(*) from segment_membership m
            left join dim_customers d using (customer_id)
            where m.segment = ? and not coalesce({CONSENT[channel]}, false)""", [segment])
        assert violations == 0, (segment, channel)
    # the channel documented in each segment's YAML is the one the membership carries
    for name, channel in channels.items():
        meta = yaml.safe_load((DBT_DIR / "models/marts/segments" / f"segment_{name}.yml")
                              .read_text())["models"][0]["config"]["meta"]
        assert meta["activation_channel"] == channel


def test_unknown_consent_is_no_consent(built: Built) -> None:
    leaked = built.query("""
        select count(*) filter (where g.sms_opt_in is null and d.sms_opt_in),
               count(*) filter (where g.ads_opt_in is null and d.ads_opt_in),
               count(*) filter (where g.email_opt_in is null and d.email_opt_in
                                and coalesce(d.email_subscription_status, '') <> 'subscribed'),
               count(*) filter (where g.email_opt_in = false and d.email_opt_in)
        from dim_customers d join identity.golden_profiles g using (customer_id)""")[0]
    assert leaked == (0, 0, 0, 0)
    assert built.scalar("select count(*) from dim_customers where not email_opt_in") > 0


def test_lapsed_store_only_and_click_and_collect_hold_on_the_orders(built: Built) -> None:
    as_of = built.scalar("select as_of_date from intermediate.int_as_of_date")
    recent_buyers_in_lapsed = built.scalar("""
        select count(*) from segment_lapsed_customers s
        where exists (select 1 from fct_orders o where o.customer_id = s.customer_id
                        and o.ordered_at >= ?::date - interval 90 day)""", [as_of])
    online_buyers_in_store_only = built.scalar("""
        select count(*) from segment_store_only_shoppers s
        where exists (select 1 from fct_orders o where o.customer_id = s.customer_id
                        and o.channel in ('web', 'app'))""")
    collectors_without_collect = built.scalar("""
        select count(*) from segment_click_and_collect_users s
        where not exists (select 1 from fct_orders o where o.customer_id = s.customer_id
                            and o.fulfilment = 'click_and_collect')""")
    overlap = built.scalar("""
        select count(*) from segment_churn_risk c join segment_lapsed_customers l
        using (customer_id)""")
    assert (recent_buyers_in_lapsed, online_buyers_in_store_only, collectors_without_collect,
            overlap) == (0, 0, 0, 0)


def test_omnichannel_vs_single_channel_is_queryable(built: Built) -> None:
    rows = {r[0]: r[1:] for r in built.query("""
        select customer_type, customers, revenue_per_customer, orders_per_customer, spend_index
        from omnichannel_comparison""")}
    assert set(rows) == {"omnichannel", "single_channel"}
    assert rows["single_channel"][3] == 1
    # the demo generator builds omnichannel buyers to spend ~1.7x; the mart must find it
    assert 1.3 <= rows["omnichannel"][3] <= 2.2
    assert built.summary.figures["omnichannel_spend_index"] == float(rows["omnichannel"][3])
    # the per-customer figures agree with the customer 360
    omni = built.query("""
        select count(*), avg(lifetime_value) from customer_360
        where is_omnichannel and order_count > 0""")[0]
    assert omni[0] == rows["omnichannel"][0]
    assert float(omni[1]) == pytest.approx(float(rows["omnichannel"][1]), abs=0.01)
    # monthly: channel revenue adds up to the month's total and to the orders
    mismatched = built.scalar("""
        select count(*) from (
            select month, sum(revenue) filter (where channel in ('web', 'app', 'store')) as parts,
                   sum(revenue) filter (where channel = 'all') as total
            from channel_kpis group by month) where parts <> total""")
    assert mismatched == 0
    assert built.scalar("select sum(revenue) from channel_kpis where channel = 'all'") == \
        built.scalar("select sum(amount) from fct_orders")
    assert built.scalar("""select count(*) from channel_kpis
                           where channel = 'all' and omnichannel_spend_index is not null""") > 6


def test_customer_360_agrees_with_the_facts(built: Built) -> None:
    assert built.scalar("select sum(order_count) from customer_360") == built.scalar(
        "select count(*) from fct_orders where customer_id is not null")
    inconsistent = built.scalar("""
        select count(*) from customer_360
        where is_omnichannel <> (purchase_channel_count >= 2)
           or (order_count > 0) <> (r_score is not null)
           or (order_count > 0 and rfm_score <> (r_score::varchar || f_score || m_score))
           or lifetime_value <> web_revenue + app_revenue + store_revenue""")
    assert inconsistent == 0
    tiers = dict(built.query("""select loyalty_tier, count(*) from customer_360
                                where loyalty_tier is not null group by 1"""))
    assert set(tiers) <= {"bronze", "silver", "gold", "platinum"} and len(tiers) >= 3


def test_history_records_entries_and_exits_per_day(built: Built, tmp_path: Path,
                                                   demo_settings: Settings) -> None:
    settings = _copy_of(built, demo_settings, tmp_path)
    first = dict(_query(settings, """
        select change_type, count(*) from segment_membership_changes group by 1"""))
    assert first == {"entered": built.summary.figures["rows"]["segment_membership"]}

    # same data again: nothing entered or left
    build(settings, select="segment_membership_changes")
    assert _query(settings, "select count(*) from segment_membership_changes")[0][0] == sum(
        first.values())

    # four months later with no new data: carts age out, lapsed customers pile up
    later = build(settings, select="int_as_of_date+", dbt_vars={"as_of_date": "2027-03-01"})
    changes = dict(_query(settings, """
        select segment || ':' || change_type, count(*) from segment_membership_changes
        where change_date = date '2027-03-01' group by 1"""))
    assert changes["abandoned_cart:exited"] == first_size(built, "abandoned_cart")
    assert changes["lapsed_customers:entered"] > 0
    sizes = _query(settings, """
        select day, size from segment_size_history where segment = 'lapsed_customers'
        order by day""")
    assert [d.isoformat() for d, _ in sizes] == ["2026-10-31", "2027-03-01"]
    assert sizes[-1][1] == later.figures["rows"]["segment_lapsed_customers"]


def first_size(built: Built, segment: str) -> int:
    return built.summary.figures["rows"][f"segment_{segment}"]


def test_a_new_segment_is_one_model_file_and_its_registry_entry(
        built: Built, tmp_path: Path, demo_settings: Settings) -> None:
    settings = _copy_of(built, demo_settings, tmp_path)
    project = tmp_path / "dbt_copy"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    folder = project / "models/marts/segments"
    (folder / "segment_recent_first_buyers.sql").write_text(
        (folder / "segment_new_customers.sql").read_text())
    (folder / "segment_recent_first_buyers.yml").write_text(
        (folder / "segment_new_customers.yml").read_text().replace(
            "segment_new_customers", "segment_recent_first_buyers"))
    settings.warehouse.dbt_project_dir = project

    with pytest.raises(CdpError, match="recent_first_buyers.*not in the segment registry"):
        build(settings, select="segment_recent_first_buyers segment_membership")
    summary = build(settings, select="segment_recent_first_buyers segment_membership",
                    dbt_vars={"segments": [*SEGMENTS, "recent_first_buyers"]})
    assert summary.figures["rows"]["segment_recent_first_buyers"] == first_size(
        built, "new_customers") > 0
    assert _query(settings, """select count(*) from segment_membership
                               where segment = 'recent_first_buyers'""")[0][0] > 0


def test_a_failing_test_names_the_node_and_no_values(built: Built, tmp_path: Path,
                                                     demo_settings: Settings) -> None:
    settings = _copy_of(built, demo_settings, tmp_path)
    con = duckdb.connect(str(settings.resolved_paths.warehouse))
    email = con.execute("select email from identity.golden_profiles where email is not null "
                        "limit 1").fetchone()[0]
    con.execute("insert into identity.golden_profiles select * from identity.golden_profiles "
                "where email = ?", [email])
    con.close()
    with pytest.raises(CdpError) as failure:
        build(settings, select="source:identity")
    message = str(failure.value)
    assert "source_unique_identity_golden_profiles_customer_id" in message
    assert email not in message
    # database messages quote values: those are cut
    assert "Ayşe" not in _redact("Conversion Error: Could not convert string 'Ayşe' to INT64")


def test_missing_inputs_are_clear_errors(settings: Settings, demo_settings: Settings,
                                         tmp_path: Path) -> None:
    with pytest.raises(CdpError, match="cdp ingest"):
        build(settings)
    unresolved = settings_on_demo_lake(demo_settings, tmp_path / "unresolved")
    with pytest.raises(CdpError, match="cdp resolve"):
        build(unresolved)


def test_a_selection_that_matches_nothing_is_an_error(built: Built, tmp_path: Path,
                                                      demo_settings: Settings) -> None:
    settings = _copy_of(built, demo_settings, tmp_path)
    with pytest.raises(CdpError, match="matched no dbt model"):
        build(settings, select="no_such_model")


def test_docs_generate_and_every_model_and_column_is_described(built: Built) -> None:
    target = generate_docs(built.settings)
    assert (target / "index.html").is_file()
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["package_name"] == "cdp"}
    assert set(models) == {p.stem for p in _model_files()}
    undocumented = []
    for key, entry in catalog["nodes"].items():
        node = manifest["nodes"][key]
        if node["resource_type"] != "model":
            continue
        if not node["description"].strip():
            undocumented.append(node["name"])
        for column in entry["columns"]:
            described = node["columns"].get(column.lower(), {}).get("description", "")
            if not described.strip():
                undocumented.append(f"{node['name']}.{column}")
    assert undocumented == []
    assert {"dim_customers", "segment_abandoned_cart"} <= {
        manifest["nodes"][k]["name"] for k in catalog["nodes"]}


# --- helpers -------------------------------------------------------------------------------------
def _copy_of(built: Built, demo_settings: Settings, folder: Path) -> Settings:
    """Fresh settings on the demo lake with a copy of the built warehouse (tests may change it)."""
    settings = settings_on_demo_lake(demo_settings, folder)
    target = settings.resolved_paths.warehouse
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(built.settings.resolved_paths.warehouse))
    con.execute("checkpoint")
    con.close()
    shutil.copyfile(built.settings.resolved_paths.warehouse, target)
    return settings


def _query(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.resolved_paths.warehouse))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
