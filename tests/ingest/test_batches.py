"""Batch-level behaviour: idempotent replays, failed batches that leave the lake untouched,
recovery after a crash, and the step summary."""

from __future__ import annotations

import shutil

import pytest

import cdp.ingest.batch as batch_module
import cdp.ingest.runner as runner
from cdp import lake
from cdp.config import ConfigError
from cdp.errors import CdpError
from cdp.ingest import IngestError, ingest
from tests.ingest.helpers import (
    WEB_HEADER,
    assert_reconciled,
    good_web_rows,
    lake_snapshot,
    land,
    log_rows,
    raw_rows,
    web_csv,
    web_row,
)


def _staging_leftovers(settings) -> list:
    return list(settings.resolved_paths.lake.parent.glob(".cdp-ingest-*"))


def test_replay_and_renamed_copy_add_nothing(settings) -> None:
    path = land(settings, "web_orders", "day1.csv", web_csv(*good_web_rows(5)))
    first = ingest(settings)
    assert first.figures["channels"]["web_orders"]["files_loaded"] == 1
    before = lake_snapshot(settings)

    again = ingest(settings)
    shutil.copy(path, path.with_name("day1_resent.csv"))
    renamed = ingest(settings)

    assert lake_snapshot(settings) == before
    web = renamed.figures["channels"]["web_orders"]
    assert (web["files_seen"], web["files_loaded"], web["files_skipped"]) == (2, 0, 2)
    assert (again.figures["files_skipped"], again.figures["rows_received"]) == (1, 0)
    assert len(raw_rows(settings, "web_orders")) == 5
    assert len(log_rows(settings)) == 1


def test_identical_files_in_one_run_load_once(settings) -> None:
    content = web_csv(*good_web_rows(3))
    land(settings, "web_orders", "a.csv", content)
    land(settings, "web_orders", "b.csv", content)
    summary = ingest(settings)
    assert (summary.figures["files_loaded"], summary.figures["files_skipped"]) == (1, 1)
    assert len(raw_rows(settings, "web_orders")) == 3


def test_failed_batches_leave_the_lake_byte_for_byte_and_others_still_load(settings) -> None:
    land(settings, "web_orders", "good1.csv", web_csv(*good_web_rows(3)))
    ingest(settings)
    before = lake_snapshot(settings)

    land(settings, "web_orders", "drift.csv", web_csv(header=WEB_HEADER + ",new_col"))
    land(settings, "web_orders", "empty.csv", b"")
    land(settings, "web_orders", "rejects.csv", web_csv(web_row("X1", total="?"),
                                                        web_row("X2", total="?")))
    land(settings, "pos_transactions", "pos.csv", b"\xef\xbb\xbfTRX_NO;TRX_DATE\n")
    with pytest.raises(IngestError) as caught:
        ingest(settings)
    message = str(caught.value)
    for expected in ("web_orders/drift.csv: schema drift", "web_orders/empty.csv: empty file",
                     "web_orders/rejects.csv: quarantine share",
                     "pos_transactions/pos.csv: encoding mismatch"):
        assert expected in message
    assert caught.value.summary.figures["files_failed"] == 4
    assert lake_snapshot(settings) == before
    assert _staging_leftovers(settings) == []

    # A good file delivered next to the bad ones still loads in the same run.
    land(settings, "web_orders", "good2.csv", web_csv(*good_web_rows(2, prefix="N")))
    with pytest.raises(IngestError) as caught:
        ingest(settings)
    assert caught.value.summary.figures["channels"]["web_orders"]["files_loaded"] == 1
    assert "4 file(s) failed" in str(caught.value)
    assert len(raw_rows(settings, "web_orders")) == 5
    assert_reconciled(settings)


def test_a_fixed_file_under_the_same_name_loads(settings) -> None:
    path = land(settings, "web_orders", "orders.csv", web_csv(*good_web_rows(2)) + "W9,oops\n")
    settings.ingest.max_quarantine_share = 0.2
    with pytest.raises(CdpError, match="orders.csv: quarantine share"):
        ingest(settings)
    path.write_text(web_csv(*good_web_rows(3)), encoding="utf-8")
    summary = ingest(settings)
    assert summary.figures["files_loaded"] == 1
    assert len(raw_rows(settings, "web_orders")) == 3
    assert_reconciled(settings)


def test_crash_before_the_load_log_entry_is_recovered_without_duplicates(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(settings, "web_orders", "orders.csv", web_csv(*good_web_rows(4), web_row("W0000")))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(runner, "_write_load_log_entry", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(settings)
    monkeypatch.undo()
    # Raw and quarantine were committed, the load-log entry was not: the batch is uncommitted.
    assert log_rows(settings) == []
    orphans = sorted(settings.resolved_paths.lake.glob("*/web_orders/*/*.parquet"))
    assert len(orphans) == 2
    # Make it a crash on an earlier day: the re-run writes to another load_date partition.
    for orphan in orphans:
        moved = orphan.parent.with_name("load_date=2000-01-01") / orphan.name
        moved.parent.mkdir()
        orphan.rename(moved)

    summary = ingest(settings)
    assert summary.figures["files_loaded"] == 1
    assert len(raw_rows(settings, "web_orders")) == 4
    assert not list(settings.resolved_paths.lake.rglob("load_date=2000-01-01/*.parquet"))
    assert lake.committed_raw_files(settings, "web_orders") == sorted(
        lake.raw_dir(settings, "web_orders").glob("*/*.parquet"))
    assert_reconciled(settings)


def test_crash_while_reading_leaves_nothing_behind(settings, monkeypatch) -> None:
    land(settings, "web_orders", "orders.csv", web_csv(*good_web_rows(10)))
    calls = {"n": 0}
    real = batch_module.ChunkedParquetWriter.add

    def flaky(self, row, chars=0):
        calls["n"] += 1
        if calls["n"] == 5:
            raise MemoryError("simulated")
        return real(self, row, chars)

    monkeypatch.setattr(batch_module.ChunkedParquetWriter, "add", flaky)
    with pytest.raises(MemoryError):
        ingest(settings)
    assert lake_snapshot(settings) == {}
    assert _staging_leftovers(settings) == []


def test_a_file_changing_while_read_fails_instead_of_loading_under_a_wrong_id(
    settings, monkeypatch
) -> None:
    land(settings, "web_orders", "growing.csv", web_csv(*good_web_rows(3)))
    monkeypatch.setattr(runner, "sha256_file", lambda path: "0" * 64)
    with pytest.raises(CdpError, match="growing.csv: file changed while being read"):
        ingest(settings)
    assert lake_snapshot(settings) == {}


def test_only_the_selected_channels_are_ingested(settings) -> None:
    land(settings, "web_orders", "w.csv", web_csv(*good_web_rows(2)))
    land(settings, "pos_transactions", "p.csv", b"")  # would fail if it were read
    summary = ingest(settings, ["web_orders"])
    assert list(summary.figures["channels"]) == ["web_orders"]
    with pytest.raises(ConfigError, match="unknown channel 'nope'"):
        ingest(settings, ["nope"])


def test_hidden_and_marker_files_are_not_batches(settings) -> None:
    land(settings, "web_orders", ".upload.csv", b"")
    land(settings, "web_orders", "_SUCCESS.csv", b"")
    summary = ingest(settings, ["web_orders"])
    assert summary.figures["files_seen"] == 0


def test_summary_rows_reconcile_per_channel(settings) -> None:
    land(settings, "web_orders", "w.csv", web_csv(*good_web_rows(3), web_row("W0001")))
    summary = ingest(settings, ["web_orders", "carts"])
    labels = [label for label, _ in summary.rows]
    assert labels[:3] == ["web_orders", "carts", "total"]
    assert "4 rows = 3 loaded + 1 quarantined" in dict(summary.rows)["web_orders"]
    assert any("carts: no files match" in note for note in summary.notes)
    totals = summary.figures
    assert totals["rows_received"] == totals["rows_loaded"] + totals["rows_quarantined"] == 4
