"""generate -> ingest -> resolve -> evaluate on the shared demo dataset (600 people).

The demo lake is read-only: resolve reads it through a copied configuration whose warehouse and
artefacts live in this test's own directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from cdp.config import Settings, load_settings
from identity import evaluate, explain_customer, explain_records, resolve
from tests.conftest import write_config

# Measured on this dataset (seed 7, 600 people, noise 1): F1 0.993, precision 0.9998.
# The bars leave room for harmless model drift while catching real regressions.
MIN_F1 = 0.97
MIN_PRECISION = 0.99

GOLDEN_TYPES = {
    "customer_id": "VARCHAR", "first_name": "VARCHAR", "last_name": "VARCHAR",
    "email": "VARCHAR", "phone": "VARCHAR", "birth_date": "DATE", "gender": "VARCHAR",
    "city": "VARCHAR", "postcode": "VARCHAR", "country": "VARCHAR", "loyalty_id": "VARCHAR",
    "emails": "VARCHAR[]", "phones": "VARCHAR[]", "loyalty_ids": "VARCHAR[]",
    "channels": "VARCHAR[]", "record_count": "BIGINT", "email_opt_in": "BOOLEAN",
    "sms_opt_in": "BOOLEAN", "ads_opt_in": "BOOLEAN", "first_seen_at": "TIMESTAMP",
    "last_seen_at": "TIMESTAMP", "first_name_source": "VARCHAR", "email_source": "VARCHAR",
}


@pytest.fixture(scope="module")
def run(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("e2e")
    demo = demo_settings.resolved_paths
    settings = load_settings(write_config(folder, paths={
        "data_dir": str(folder / "data"), "landing": str(demo.landing), "lake": str(demo.lake),
        "truth": str(demo.truth)}), env={})
    resolved = resolve(settings)
    evaluated = evaluate(settings, settings.resolved_paths.truth)
    return {"settings": settings, "resolve": resolved, "evaluate": evaluated}


def _con(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True)


def test_meets_the_accuracy_bars(run: dict) -> None:
    f = run["evaluate"].figures
    assert f["f1"] >= MIN_F1, f
    assert f["precision"] >= MIN_PRECISION, f
    assert f["bcubed_f1"] >= MIN_F1, f
    # the resolver must not just emit one cluster per person-ish: customers near true people
    assert 0.9 <= f["predicted_clusters"] / f["true_entities"] <= 1.3


def test_every_resolved_source_row_has_exactly_one_customer(run: dict) -> None:
    settings = run["settings"]
    figures = run["resolve"].figures
    con = _con(settings)
    total, distinct = con.execute("""
        select count(*), count(distinct (source, source_record_id))
        from identity.identity_clusters""").fetchall()[0]
    orphans = con.execute("""
        select count(*) from identity.identity_clusters c
        anti join identity.golden_profiles g using (customer_id)""").fetchall()[0][0]
    customers = con.execute(
        "select count(distinct customer_id) from identity.identity_clusters").fetchall()[0][0]
    con.close()
    assert total == distinct == figures["rows_total"] - figures["rows_unresolved"]
    assert orphans == 0
    assert customers == figures["customers"]
    assert figures["rows_total"] == sum(figures["rows_in"].values())


def test_golden_profiles_have_the_columns_dbt_relies_on(run: dict) -> None:
    con = _con(run["settings"])
    types = dict(con.execute("""
        select column_name, data_type from information_schema.columns
        where table_schema = 'identity' and table_name = 'golden_profiles'""").fetchall())
    filled = con.execute("""
        select count(*) filter (where first_name is not null) * 1.0 / count(*),
               count(*) filter (where record_count >= 1) * 1.0 / count(*)
        from identity.golden_profiles""").fetchall()[0]
    con.close()
    for column, expected in GOLDEN_TYPES.items():
        assert types.get(column) == expected, (column, types.get(column))
    assert filled[0] > 0.8 and filled[1] == 1.0


def test_artefacts_are_written(run: dict) -> None:
    folder = run["settings"].resolved_paths.artefacts / "identity"
    model = json.loads((folder / "splink_model.json").read_text())
    assert {c["output_column_name"] for c in model["comparisons"]} >= {
        "first_name", "last_name", "birth_date", "email", "phone", "location"}
    for chart in ("match_weights.html", "m_u_parameters.html"):
        assert "<html" in (folder / chart).read_text().lower()
    assert json.loads((folder / "evaluation.json").read_text())["f1"] == pytest.approx(
        run["evaluate"].figures["f1"])
    blocking = run["resolve"].figures["model"]["blocking"]
    assert all(b["added_comparisons"] >= 0 for b in blocking) and any(b["kept"] for b in blocking)


def test_explain_on_real_output(run: dict) -> None:
    settings = run["settings"]
    con = _con(settings)
    customer, a, b = con.execute("""
        select customer_id, min(source || ':' || source_record_id),
               max(source || ':' || source_record_id)
        from identity.identity_clusters group by customer_id
        having count(distinct source) >= 3 order by customer_id limit 1""").fetchall()[0]
    con.close()
    pair = explain_records(settings, a, b)
    assert dict(pair.rows)["same customer"] == "yes"
    who = explain_customer(settings, customer)
    assert len(who.figures["records"]) >= 2
    assert "@" not in "".join(v.split("***@")[0] for v in who.figures["identifiers"]["email"])


def test_same_input_gives_the_same_customers(run: dict, tmp_path: Path) -> None:
    settings = run["settings"]
    con = _con(settings)
    before = con.execute("select source, source_record_id, customer_id "
                         "from identity.identity_clusters order by 1, 2").fetchall()
    con.close()
    resolve(settings)
    con = _con(settings)
    after = con.execute("select source, source_record_id, customer_id "
                        "from identity.identity_clusters order by 1, 2").fetchall()
    con.close()
    assert before == after
