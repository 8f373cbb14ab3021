"""The whole chain in Airflow with `dag.test()`, on ~300 generated people:

cdp_demo_generate -> cdp_ingest_<channel> (x8) -> cdp_identity -> cdp_warehouse (cosmos, one
dbt build per model) -> cdp_activation (file destination + a webhook whose URL and signing
secret come from Airflow Variables), against the temporary metadata DB of conftest.py.

`dag.test()` runs one DAG run in this process; asset-triggered DAGs are run one after the
other here (the scheduler would start them from the asset events, which are checked too).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdp import lake
from tests.airflow.conftest import (
    WEBHOOK_SECRET_VAR,
    WEBHOOK_SEGMENTS,
    WEBHOOK_URL_VAR,
    AirflowEnv,
)
from tests.airflow.dag_runs import asset_events, dag_test_mode, run, xcom
from tests.airflow.http_receiver import Receiver, http_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

GATES_INSTALLED = importlib.util.find_spec("cdp.gates") is not None
PEOPLE = 300
SEED = 11
WEBHOOK_SECRET = "whsec-test-0123456789"


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    # Not read-only: dbt-duckdb may still hold the file in this process (same configuration).
    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def chain(dagbag: Any, airflow_env: AirflowEnv) -> Iterator[dict[str, Any]]:
    """Run every DAG of the chain once; yield their runs and what the webhook received."""
    settings = airflow_env.settings
    with http_receiver() as webhook, dag_test_mode(dagbag), pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_VAR_{WEBHOOK_URL_VAR}", webhook.url)
        patch.setenv(f"AIRFLOW_VAR_{WEBHOOK_SECRET_VAR}", WEBHOOK_SECRET)
        runs: dict[str, Any] = {}
        runs["generate"] = run(dagbag, "cdp_demo_generate",
                               run_conf={"people": PEOPLE, "seed": SEED})
        for name in settings.channels:
            runs[f"ingest_{name}"] = run(dagbag, f"cdp_ingest_{name}")
        runs["identity"] = run(dagbag, "cdp_identity")
        # Triggered in auto mode with nothing new: an incremental run, nothing published.
        # (Before the warehouse DAG: cosmos' dbt-duckdb keeps the warehouse open in this
        # process, which a worker process would not.)
        runs["identity_auto"] = run(dagbag, "cdp_identity", run_conf={"mode": "auto"})
        runs["warehouse"] = run(dagbag, "cdp_warehouse")
        runs["activation"] = run(dagbag, "cdp_activation")
        # A second ingestion run finds nothing new: it must not announce new raw data.
        runs["ingest_again"] = run(dagbag, "cdp_ingest_carts")
        yield {"runs": runs, "webhook": webhook, "settings": settings}


def test_every_channel_is_ingested_and_announced_once(chain: dict[str, Any]) -> None:
    settings, runs = chain["settings"], chain["runs"]
    generated = xcom(runs["generate"], "generate")[0]
    assert generated["people"] == PEOPLE
    log = lake.read_load_log(settings).to_pylist()
    events = asset_events()
    for name in settings.channels:
        (figures,) = xcom(runs[f"ingest_{name}"], "ingest")
        assert figures["pull"]["source"] == "file_drop"
        assert figures["rows_received"] == generated["rows"][name]
        assert figures["rows_loaded"] + figures["rows_quarantined"] == figures["rows_received"]
        assert sum(e["rows_loaded"] for e in log if e["channel"] == name) == figures["rows_loaded"]
        assert events[f"raw_{name}"][0]["rows_loaded"] == figures["rows_loaded"]
    # The re-run loaded nothing: `publish` skipped, no second raw_carts event.
    again = runs["ingest_again"].get_task_instance("publish")
    assert again.state == "skipped"
    assert len(events["raw_carts"]) == 1


def test_identity_resolves_customers_and_announces_them(chain: dict[str, Any]) -> None:
    settings, runs = chain["settings"], chain["runs"]
    (figures,) = xcom(runs["identity"], "resolve")
    warehouse = settings.resolved_paths.warehouse
    customers = query(warehouse, "select count(distinct customer_id) from "
                                 "identity.identity_clusters")[0][0]
    assert figures["customers"] == customers
    assert 0.5 * PEOPLE <= customers <= 1.5 * PEOPLE  # ~one customer per generated person
    (event,) = asset_events()["identity"]
    assert event["customers"] == customers
    # the run log names the DAG run that asked for the resolve
    assert query(warehouse, "select json_extract_string(figures, '$.trigger') "
                            "from identity.resolve_runs") == [
        (f"airflow:cdp_identity/{runs['identity'].run_id}",)]
    # The gates ran before publishing (real Great Expectations gates once cdp.gates exists).
    for gate in ("raw_gates", "identity_gates"):
        (result,) = xcom(runs["identity"], gate)
        assert result["skipped"] is (not GATES_INSTALLED)


def test_identity_in_auto_mode_runs_incremental_and_publishes_only_news(
        chain: dict[str, Any]) -> None:
    runs = chain["runs"]
    (first,) = xcom(runs["identity"], "resolve")
    assert first["mode"] == "full"  # the DAG's default: identity.scheduled_mode
    (auto,) = xcom(runs["identity_auto"], "resolve")
    assert auto["mode"] == "incremental" and auto["up_to_date"] is True
    assert runs["identity_auto"].get_task_instance("publish").state == "skipped"
    assert len(asset_events()["identity"]) == 1


def test_the_warehouse_dag_builds_every_segment_table(chain: dict[str, Any]) -> None:
    from cdp_dags.assets import segment_names

    settings, runs = chain["settings"], chain["runs"]
    warehouse = settings.resolved_paths.warehouse
    model_tasks = [ti for ti in runs["warehouse"].get_task_instances()
                   if ti.task_id.startswith("dbt.")]
    assert len(model_tasks) >= 30 and {ti.state for ti in model_tasks} == {"success"}
    membership = dict(query(warehouse, "select segment, count(*) from main.segment_membership "
                                       "group by segment"))
    registry = segment_names(settings)
    assert set(membership) <= set(registry)
    assert sum(membership.values()) > 0 and len(membership) >= 6  # most segments have members
    for segment in registry:
        table = f"main.segment_{segment}"
        rows = query(warehouse, f"select count(*), count(distinct customer_id) from {table}")[0]
        assert rows[0] == rows[1] == membership.get(segment, 0), segment
        only_one_side = query(warehouse, f"""
            (select customer_id from {table}
             except select customer_id from main.segment_membership where segment = ?)
            union all
            (select customer_id from main.segment_membership where segment = ?
             except select customer_id from {table})""", [segment, segment])
        assert only_one_side == [], segment
    unknown = query(warehouse, """
        select count(*) from main.segment_membership m
        where not exists (select 1 from identity.identity_clusters c
                          where c.customer_id = m.customer_id)""")[0][0]
    assert unknown == 0
    # Gated segment assets, with their member counts.
    events = asset_events()
    for segment in registry:
        (event,) = events[f"segment_{segment}"]
        assert event == {"members": membership.get(segment, 0)}
    assert xcom(runs["warehouse"], "publish_segments")[0] == membership
    # Cosmos also announced each dbt model it built (Assets named after the tables).
    model_assets = [name for name in events if name.startswith("duckdb://")]
    assert any(name.endswith("/main/segment_membership") for name in model_assets)
    assert any(name.endswith("/main/customer_360") for name in model_assets)


def test_activation_syncs_each_segment_destination_pair(chain: dict[str, Any]) -> None:
    from cdp_dags.assets import segment_names

    settings, runs, webhook = chain["settings"], chain["runs"], chain["webhook"]
    warehouse = settings.resolved_paths.warehouse
    membership = dict(query(warehouse, "select segment, count(*) from main.segment_membership "
                                       "group by segment"))
    registry = segment_names(settings)
    assert xcom(runs["activation"], "activation_gate")[0]["allowed"] is True
    (marts_gate,) = xcom(runs["warehouse"], "mart_gates")
    assert marts_gate["skipped"] is (not GATES_INSTALLED)
    pairs = xcom(runs["activation"], "plan")[0]
    assert sorted((p["segment"], p["destination"]) for p in pairs) == sorted(
        [(s, "file") for s in registry] + [(s, "crm_webhook") for s in WEBHOOK_SEGMENTS])
    results = xcom(runs["activation"], "sync")
    assert len(results) == len(pairs)  # one mapped task instance per pair
    by_pair = {}
    for result in results:
        (pair,) = result["pairs"]
        by_pair[(pair["segment"], pair["destination"])] = pair
        assert pair["members"] == membership.get(pair["segment"], 0)
        assert pair["accepted"] == pair["adds"] == pair["eligible"]
        assert pair["failed_batches"] == 0
    # File destination: exported rows per segment.
    exports = settings.resolved_paths.data_dir / "exports" / "file"
    for segment in registry:
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) - 1
                    for p in (exports / segment).glob("*.csv"))
        assert lines == by_pair[(segment, "file")]["accepted"], segment
    assert_webhook_received(webhook, by_pair)


def assert_webhook_received(webhook: Receiver, by_pair: dict[tuple[str, str], Any]) -> None:
    """The webhook got the eligible members, signed with the secret held in Airflow."""
    received: dict[str, set[str]] = {}
    for request in webhook.requests:
        expected = "sha256=" + hmac.new(
            WEBHOOK_SECRET.encode(), request.headers["X-CDP-Timestamp"].encode() + b"."
            + request.raw, hashlib.sha256).hexdigest()
        assert request.headers["X-CDP-Signature"] == expected
        body = json.loads(request.raw)
        assert body["operation"] == "add" and body["destination"] == "crm_webhook"
        received.setdefault(body["segment"], set()).update(
            m["customer_id"] for m in body["members"])
    for segment in WEBHOOK_SEGMENTS:
        assert len(received.get(segment, set())) == by_pair[(segment, "crm_webhook")]["accepted"]
    assert set(received) <= set(WEBHOOK_SEGMENTS)
