"""The raw gate on generated data: passes when good, fails (and holds the batch back) when broken
on purpose, warns without failing, and never prints or stores a raw PII value."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp import lake
from cdp.config import Settings
from cdp.gates import GateError, gate_failed_glob, release_batch, run_gate
from cdp.gates.state import read_verdicts, verdict_path, write_verdict
from cdp.ingest import ingest
from tests.gates.conftest import Chain


def batch_of(settings: Settings, channel: str) -> tuple[str, Path]:
    """The (only) committed batch of a channel in the demo data: id and raw file."""
    entries = [e for e in lake.read_load_log(settings).to_pylist() if e["channel"] == channel]
    assert len(entries) == 1
    return entries[0]["batch_id"], settings.resolved_paths.lake / entries[0]["raw_file"]


def rewrite(path: Path, change) -> None:
    """Break a raw batch file on purpose: `change(frame)` returns the new pandas frame."""
    frame = pq.read_table(path).to_pandas()
    pq.write_table(pa.Table.from_pandas(change(frame), preserve_index=False), path)


def artefact_text(settings: Settings) -> str:
    """Everything the gates wrote: stored results, Data Docs, verdicts and state."""
    roots = [settings.resolved_paths.artefacts, settings.resolved_paths.meta / "gates"]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for root in roots for p in root.rglob("*")
                     if p.is_file() and p.suffix in {".json", ".html"})


def test_passes_on_generated_data_once_per_batch(chain: Chain, chain_copy: Settings) -> None:
    summary = chain.summaries["gate raw"]  # the real chain gated the demo's fresh batches

    assert summary.ok
    assert summary.figures["batches_gated"] == len(chain.settings.channels)
    assert summary.figures["errors"] == 0
    verdicts = read_verdicts(chain.settings)
    assert {v["status"] for v in verdicts.values()} == {"passed"}
    assert {v["channel"] for v in verdicts.values()} == set(chain.settings.channels)
    assert ("data docs", summary.figures["data_docs"]) in summary.rows

    again = run_gate(chain_copy, "raw")  # verdicts are final: nothing new to gate
    assert again.ok and again.figures["batches_gated"] == 0
    assert "no new raw batch to gate" in again.notes
    index = Path(again.figures["data_docs"])
    assert index == chain_copy.resolved_paths.artefacts / "data_docs" / "index.html"
    assert index.is_file() and "raw/web_orders" in index.read_text(encoding="utf-8")


def test_dropped_column_fails_and_batch_is_held_back(lake_copy: Settings) -> None:
    batch_id, raw_file = batch_of(lake_copy, "web_orders")
    rewrite(raw_file, lambda f: f.drop(columns=["customer_email"]))

    with pytest.raises(GateError) as failure:
        run_gate(lake_copy, "raw", channel="web_orders")

    message = str(failure.value)
    assert "raw.web_orders" in message
    assert "expect_table_columns_to_match_set" in message
    assert "missing column: customer_email" in message
    assert failure.value.summary.ok is False
    # Held back: out of the raw lake (so identity and dbt never read it), kept in quarantine.
    assert str(raw_file) not in glob.glob(lake.raw_glob(lake_copy, "web_orders"))
    assert raw_file not in lake.committed_raw_files(lake_copy, "web_orders")
    held = glob.glob(gate_failed_glob(lake_copy, "web_orders"))
    assert [Path(p).name for p in held] == [raw_file.name]
    assert read_verdicts(lake_copy)[batch_id]["status"] == "failed"
    # Row quarantine and the ingest sweep do not mix with or remove it; ingest does not reload it.
    assert not [p for p in glob.glob(lake.quarantine_glob(lake_copy, "web_orders"))
                if "gate_failed" in p]
    reloaded = ingest(lake_copy, channels=["web_orders"])
    assert reloaded.ok
    assert not raw_file.exists() and Path(held[0]).exists()
    # Other channels were not touched by a web_orders-only run.
    assert set(read_verdicts(lake_copy)) == {batch_id}


def test_duplicated_keys_fail_naming_rows(lake_copy: Settings) -> None:
    _, raw_file = batch_of(lake_copy, "pos_transactions")
    rewrite(raw_file, lambda f: f.assign(TRX_NO=f["TRX_NO"].where(f.index >= 3, f["TRX_NO"][0])))

    with pytest.raises(GateError) as failure:
        run_gate(lake_copy, "raw", channel="pos_transactions")

    message = str(failure.value)
    assert "raw.pos_transactions" in message
    assert "expect_column_values_to_be_unique on column TRX_NO: 3 of" in message
    assert "at _row_number 1, 2, 3" in message


def test_future_event_times_fail_relative_to_load_time(lake_copy: Settings) -> None:
    _, raw_file = batch_of(lake_copy, "carts")

    def push_to_future(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()  # 3 days after the load: beyond the 24 h clock-skew tolerance
        frame.loc[:4, "updated_at"] = frame["_ingested_at"].max() + pd.Timedelta(days=3)
        return frame

    rewrite(raw_file, push_to_future)
    with pytest.raises(GateError) as failure:
        run_gate(lake_copy, "raw", channel="carts")
    assert "expect_column_values_to_be_between on column updated_at: 5 of" in str(failure.value)


def test_row_count_drop_to_ten_percent_fails(chain_copy: Settings) -> None:
    lake_copy = chain_copy  # its first batches passed the gate: the channel's history
    landing = lake_copy.resolved_paths.landing / "web_orders"
    (first,) = sorted(landing.glob("*.csv"))
    lines = first.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = len(lines) // 10
    small = landing / "web_orders_20261102.csv"
    small.write_text("".join(lines[: keep + 1]), encoding="utf-8")
    ingest(lake_copy, channels=["web_orders"])
    new_batches = [b for b, ch in lake.committed_batches(lake_copy, "web_orders").items()
                   if b not in read_verdicts(lake_copy)]
    assert len(new_batches) == 1

    with pytest.raises(GateError) as failure:
        run_gate(lake_copy, "raw", channel="web_orders")

    message = str(failure.value)
    assert "expect_table_row_count_to_be_between" in message
    assert f"observed {keep}" in message
    assert read_verdicts(lake_copy)[new_batches[0]]["status"] == "failed"
    # The good batch stays; only the short one is held back.
    assert len(lake.committed_raw_files(lake_copy, "web_orders")) == 1
    assert len(glob.glob(gate_failed_glob(lake_copy, "web_orders"))) == 1

    # A person decides the short day was real: the batch goes back and counts as history.
    released = release_batch(lake_copy, new_batches[0], reason="holiday")
    assert released.figures["verdict"]["status"] == "released"
    assert len(lake.committed_raw_files(lake_copy, "web_orders")) == 2
    assert run_gate(lake_copy, "raw").figures["batches_gated"] == 0


def test_warning_level_failure_reports_without_raising(lake_copy: Settings) -> None:
    _, raw_file = batch_of(lake_copy, "web_orders")
    broken = [f"mehmet.kaya{i}.gmail.com" for i in range(10)]  # ~3%: under the warning share

    def garble(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[: len(broken) - 1, "customer_email"] = broken
        return frame

    rewrite(raw_file, garble)
    summary = run_gate(lake_copy, "raw", channel="web_orders")

    assert summary.ok
    warnings = [n for n in summary.notes if n.startswith("WARNING")]
    assert len(warnings) == 1
    assert "expect_column_values_to_match_regex on column customer_email" in warnings[0]
    assert "m***" in warnings[0]
    text = "\n".join(summary.notes) + json.dumps(summary.figures, default=str)
    written = artefact_text(lake_copy)
    assert "m***" in written  # the masked sample reaches the stored results and Data Docs
    for value in broken:
        assert value not in text and value not in written


def test_error_messages_and_docs_carry_no_raw_pii(lake_copy: Settings) -> None:
    _, raw_file = batch_of(lake_copy, "loyalty_members")
    frame = pq.read_table(raw_file).to_pandas()
    emails = [e for e in frame["email"].dropna().head(120)]
    phones = [p for p in frame["mobile"].dropna().head(120)]

    def garble(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        # Half the emails lose their '@', half the phones grow too many digits: error level.
        f["email"] = f["email"].where(~f["email"].isin(emails), f["email"].str.replace("@", " at "))
        f["mobile"] = f["mobile"].where(~f["mobile"].isin(phones), f["mobile"] + "99999999")
        return f

    rewrite(raw_file, garble)
    with pytest.raises(GateError) as failure:
        run_gate(lake_copy, "raw", channel="loyalty_members")

    message = str(failure.value)
    assert "on column email" in message and "on column mobile" in message
    assert "***" in message
    everything = message + "\n".join(failure.value.summary.notes) + artefact_text(lake_copy)
    for value in emails + phones:
        assert value not in everything
        assert value.replace("@", " at ") not in everything
        assert value + "99999999" not in everything


def test_interrupted_hold_back_is_completed(lake_copy: Settings) -> None:
    batch_id, raw_file = batch_of(lake_copy, "sms_contacts")
    # A crash after the failed verdict was written, before the file moved.
    write_verdict(lake_copy, batch_id, {
        "batch_id": batch_id, "channel": "sms_contacts", "status": "failed",
        "raw_file": str(raw_file.relative_to(lake_copy.resolved_paths.lake))})
    assert verdict_path(lake_copy, batch_id).exists() and raw_file.exists()

    summary = run_gate(lake_copy, "raw", channel="sms_contacts")

    assert not raw_file.exists()
    assert len(glob.glob(gate_failed_glob(lake_copy, "sms_contacts"))) == 1
    assert any("interrupted" in n for n in summary.notes)


def test_unknown_stage_and_misplaced_options_are_clear(lake_copy: Settings) -> None:
    from cdp.errors import CdpError

    with pytest.raises(CdpError, match="unknown gate stage"):
        run_gate(lake_copy, "bronze")  # type: ignore[arg-type]
    with pytest.raises(CdpError, match="raw gate only"):
        run_gate(lake_copy, "marts", channel="web_orders")
    with pytest.raises(CdpError, match="marts gate only"):
        run_gate(lake_copy, "raw", confirm=True)
