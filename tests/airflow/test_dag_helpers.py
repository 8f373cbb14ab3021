"""The small pieces the DAGs rely on: gates, pulls, destination secrets, alerts, pair planning."""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

from cdp.config import load_settings
from cdp.errors import CdpError
from cdp.summary import StepSummary
from tests.airflow.conftest import AirflowEnv, config_with
from tests.airflow.http_receiver import http_receiver

pytestmark = pytest.mark.airflow


# --- gates ------------------------------------------------------------------------------------
def test_gate_tasks_are_no_ops_only_while_cdp_gates_is_missing(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv,
        caplog: pytest.LogCaptureFixture) -> None:
    from cdp_dags import gates

    monkeypatch.setitem(sys.modules, "cdp.gates", None)  # import raises ModuleNotFoundError
    with caplog.at_level("WARNING", logger="cdp_dags.gates"):
        result = gates.run_gate("raw")
    assert result == {"stage": "raw", "skipped": True, "reason": "cdp.gates not installed"}
    assert "gates are not installed" in caplog.text


def test_a_gate_that_fails_fails_its_task_without_retries(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from cdp_dags import gates

    calls: list[tuple[str, dict]] = []

    def run_gate(settings: object, stage: str, **options: object) -> StepSummary:
        calls.append((stage, options))
        if stage == "marts" and not options.get("confirm"):
            raise CdpError("segment_sizes: lapsed_customers doubled (31 -> 64)")
        return StepSummary(title=f"{stage} gate", figures={"expectations": 12})

    fake = types.ModuleType("cdp.gates")
    fake.run_gate = run_gate  # type: ignore[attr-defined]
    fake.activation_allowed = lambda settings: (False, "the last marts gate failed")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cdp.gates", fake)
    assert gates.run_gate("identity") == {"stage": "identity", "skipped": False,
                                          "expectations": 12}
    with pytest.raises(AirflowFailException, match="marts gate failed: segment_sizes"):
        gates.run_gate("marts")
    assert gates.run_gate("marts", confirm=True)["skipped"] is False
    assert calls == [("identity", {}), ("marts", {}), ("marts", {"confirm": True})]
    with pytest.raises(AirflowFailException, match="activation stopped: the last marts gate"):
        gates.activation_allowed()
    monkeypatch.setitem(sys.modules, "cdp.gates", None)
    assert gates.activation_allowed()["allowed"] is True  # not installed: not gated


def test_a_broken_gates_module_is_not_mistaken_for_a_missing_one(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags import gates

    class MissingDependency(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object, target: object = None) -> None:
            if name == "cdp.gates":
                raise ModuleNotFoundError("No module named 'great_expectations'",
                                          name="great_expectations")

    monkeypatch.delitem(sys.modules, "cdp.gates", raising=False)
    monkeypatch.setattr(sys, "meta_path", [MissingDependency(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError, match="great_expectations"):
        gates.run_gate("raw")


# --- pulls --------------------------------------------------------------------------------------
SMS_CSV = ("contact_id,msisdn,name,opt_in,opt_in_date,messages_sent,last_sent_at\n"
           "S1,+905321112233,Ayşe Yılmaz,Y,2024-01-02,3,2024-03-01T10:00:00\n"
           "S2,05334445566,Mehmet Öz,N,2024-02-03,0,\n")


def test_a_channel_with_a_source_variable_is_pulled_then_ingested(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags import sources

    from cdp.ingest import ingest

    settings = load_settings(config_with(tmp_path), env={})
    remote = tmp_path / "remote_sftp_mirror"
    remote.mkdir()
    (remote / "contacts_0301.csv").write_text(SMS_CSV, encoding="utf-8")
    (remote / ".contacts_0302.csv.part").write_text("half an upload", encoding="utf-8")
    (remote / "_SUCCESS").write_text("", encoding="utf-8")
    (remote / "readme.txt").write_text("not data", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_VAR_CDP_SOURCE_SMS_CONTACTS", json.dumps({"uri": remote.as_uri()}))

    first = sources.pull(settings, settings.channel("sms_contacts"))
    landing = settings.resolved_paths.landing / "sms_contacts"
    assert first == {"source": "pull", "copied": 1, "already_there": 0}
    assert sorted(p.name for p in landing.iterdir()) == ["contacts_0301.csv"]
    assert (landing / "contacts_0301.csv").read_bytes() == SMS_CSV.encode("utf-8")
    again = sources.pull(settings, settings.channel("sms_contacts"))
    assert again == {"source": "pull", "copied": 0, "already_there": 1}

    loaded = ingest(settings, channels=["sms_contacts"])
    assert loaded.figures["rows_loaded"] + loaded.figures["rows_quarantined"] == 2
    # Channels without a source variable are file drops: nothing to pull.
    assert sources.pull(settings, settings.channel("carts"))["source"] == "file_drop"


def test_a_malformed_source_variable_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags import sources

    settings = load_settings(config_with(tmp_path), env={})
    monkeypatch.setenv("AIRFLOW_VAR_CDP_SOURCE_CARTS", json.dumps(["s3://bucket/carts"]))
    with pytest.raises(CdpError, match="cdp_source_carts must be JSON like"):
        sources.pull(settings, settings.channel("carts"))


# --- destination secrets ------------------------------------------------------------------------
def test_destination_secrets_come_from_airflow_variables_and_connections(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags.secrets import destination_secrets

    settings = load_settings(config_with(tmp_path, activation={"destinations": {
        "crm": {"type": "webhook", "url_env": "CRM_URL", "secret_env": "CRM_SECRET",
                "purpose": "email"},
        "stores": {"type": "postgres", "dsn_env": "STORE_DB_DSN", "purpose": "none"},
    }}), env={})
    for name in ("CRM_URL", "CRM_SECRET", "STORE_DB_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_CRM_URL", "https://crm.example.com/hooks/cdp")
    monkeypatch.setenv("AIRFLOW_VAR_CRM_SECRET", "s3cr3t-signing-key")
    monkeypatch.setenv("AIRFLOW_CONN_STORE_DB_DSN",
                       "postgresql://cdp:pw@db.internal:5432/marketing")

    with destination_secrets(settings, "crm") as exported:
        assert sorted(exported) == ["CRM_SECRET", "CRM_URL"]
        assert os.environ["CRM_URL"] == "https://crm.example.com/hooks/cdp"
        assert os.environ["CRM_SECRET"] == "s3cr3t-signing-key"
    assert "CRM_URL" not in os.environ and "CRM_SECRET" not in os.environ

    with destination_secrets(settings, "stores"):
        assert "cdp:pw@db.internal:5432/marketing" in os.environ["STORE_DB_DSN"]
    assert "STORE_DB_DSN" not in os.environ

    # A value the worker already has wins, and is left in place.
    monkeypatch.setenv("CRM_URL", "https://from-the-worker-env")
    with destination_secrets(settings, "crm") as exported:
        assert exported == ["CRM_SECRET"]
        assert os.environ["CRM_URL"] == "https://from-the-worker-env"
    assert os.environ["CRM_URL"] == "https://from-the-worker-env"


# --- alerts -------------------------------------------------------------------------------------
def test_failure_alerts_reach_the_alert_webhook_without_data_values(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags import alerts

    ti = SimpleNamespace(dag_id="cdp_identity", task_id="resolve", map_index=-1,
                         run_id="manual__1", try_number=2)
    with http_receiver() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_CDP_ALERTS", json.dumps(
            {"conn_type": "http", "host": hook.url, "password": "alert-token"}))
        alerts.task_failed({"ti": ti, "exception": ValueError("bad value 'ayse@example.com'")})
        alerts.task_failed({"ti": ti, "exception": CdpError("web_orders/a.csv: row 3: rule")})
        asyncio.run(alerts.deadline_missed(
            context={"dag_run": {"dag_id": "cdp_warehouse", "dag_run_id": "asset__2"},
                     "deadline": {"deadline_time": "2026-01-01T02:00:00+00:00"}},
            allowed="2:00:00"))
    first, second, third = (r.json for r in hook.requests)
    assert first == {"event": "task_failed", "dag_id": "cdp_identity", "task_id": "resolve",
                     "map_index": -1, "run_id": "manual__1", "try_number": 2,
                     "error": "ValueError (details in the task log)"}
    assert b"ayse" not in hook.requests[0].raw
    assert second["error"] == "CdpError: web_orders/a.csv: row 3: rule"
    assert third["event"] == "deadline_missed" and third["dag_id"] == "cdp_warehouse"
    assert third["allowed"] == "2:00:00"
    assert hook.requests[0].headers["Authorization"] == "Bearer alert-token"


def test_alert_delivery_problems_never_raise(
        monkeypatch: pytest.MonkeyPatch, airflow_env: AirflowEnv) -> None:
    from cdp_dags import alerts

    monkeypatch.delenv("AIRFLOW_CONN_CDP_ALERTS", raising=False)
    assert alerts.notify({"event": "test"}) is False  # no connection: logged only
    monkeypatch.setenv("AIRFLOW_CONN_CDP_ALERTS",
                       json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/down"}))
    assert alerts.notify({"event": "test"}) is False


# --- activation planning ----------------------------------------------------------------------
def test_activation_plans_one_pair_per_segment_and_destination(
        tmp_path: Path, airflow_env: AirflowEnv) -> None:
    from cdp_activation import plan_pairs
    from cdp_dags.assets import segment_names

    settings = load_settings(config_with(tmp_path, activation={"destinations": {
        "file": {"type": "file"},
        "meta_ads": {"type": "meta", "audiences": {"lapsed_customers": "1201",
                                                    "high_value_omnichannel": "1202"}},
        "crm": {"type": "webhook", "url": "https://crm.example.com/x", "purpose": "email",
                "segments": ["abandoned_cart"]},
    }}), env={})
    registry = segment_names(settings)
    assert len(registry) >= 10
    pairs = plan_pairs(settings, None)
    assert len(pairs) == len(registry) + 2 + 1
    assert {p["segment"] for p in pairs if p["destination"] == "file"} == set(registry)
    assert sorted(p["segment"] for p in pairs if p["destination"] == "meta_ads") == [
        "high_value_omnichannel", "lapsed_customers"]
    # A run triggered by one segment's asset syncs only that segment.
    assert plan_pairs(settings, ["lapsed_customers"]) == [
        {"segment": "lapsed_customers", "destination": "file"},
        {"segment": "lapsed_customers", "destination": "meta_ads"}]

