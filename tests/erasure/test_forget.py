"""`cdp forget` end to end on generated data (the story in conftest.py)."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq

from cdp import lake
from cdp.erasure import store
from tests.erasure.conftest import Story, fold, snapshot


def test_dry_run_changes_nothing_and_counts_what_forget_then_removes(story: Story) -> None:
    dry = story.dry_run
    assert dry.exit_code == 0, dry.output
    assert dry.before == dry.after  # not one byte of the data directory changed
    assert "dry run" in dry.output and story.person.customer_id in dry.output
    done = story.request["counts"]
    for place in ("warehouse_tables", "lake", "exports", "data_files", "tombstones"):
        assert dry.figures[place] == done[place], place
    assert done["warehouse_tables"]["identity.identity_clusters"] == len(story.person.records)
    assert done["warehouse_tables"]["identity.golden_profiles"] == 1
    assert done["warehouse_compacted"] is True


def test_forget_leaves_no_trace_anywhere(story: Story) -> None:
    assert story.forget.exit_code == 0, story.forget.output
    assert story.request["customer_ids"] == [story.person.customer_id]
    assert story.request["matched_by"] == "email" and story.request["status"] == "done"
    # Every warehouse table and view, every Parquet file, every other file under data/.
    assert story.traces_after_forget == []
    # ... still none after the person's data was delivered again, ingested and resolved.
    assert story.traces_at_end == []


def test_output_and_logs_hold_no_personal_data(story: Story) -> None:
    person = story.person
    needles = sorted(n for n in person.needles if len(n) >= 5)
    for name in ("dry_run", "forget", "again", "ingest"):
        step = getattr(story, name)
        text = step.output + "\n".join(step.logs)
        assert not [n for n in needles if n in text], name
        assert fold(person.last_name) not in fold(text), name
        assert not [v for v in person.delivered if v[:16] in text], name
    assert person.customer_id in story.forget.output  # pseudonymous ids are shown


def test_counts_reconcile(story: Story) -> None:
    settings = story.settings
    purges = store.read_purges(settings).to_pylist()
    raw = [p for p in purges if p["place"] == "raw"]
    # Each raw file lost exactly what its purge record says (anonymised rows stay).
    for path, rows in story.before_lake["raw_rows"].items():
        removed = sum(p["rows_removed"] for p in raw if p["file"] == path)
        assert story.after_lake["raw_rows"][path] == rows - removed, path
    # Generated data holds each source record once: every one was removed or anonymised,
    # and cut from its landing file.
    assert sum(p["rows_removed"] + p["rows_anonymised"] for p in raw) == len(
        story.person.records)
    landing = [p for p in purges if p["place"] == "landing" and p["request_id"] != "ingest"]
    assert sum(p["rows_removed"] for p in landing) == len(story.person.records)
    # The load log is unchanged: each entry still names its landing file's original hash.
    log = {e["batch_id"]: e for e in lake.read_load_log(settings).to_pylist()}
    assert {p["batch_id"] for p in landing} <= set(log)


def test_orders_stay_for_revenue_without_the_person(story: Story) -> None:
    before, after = story.before_lake, story.after_lake
    assert after["web_revenue"] == before["web_revenue"]
    assert after["web_orders"] == before["web_orders"]
    web = {rid for source, rid in story.person.records if source == "web_orders"}
    assert web
    anonymised = []
    for path in (story.settings.resolved_paths.raw / "web_orders").glob("*/*.parquet"):
        rows = pq.ParquetFile(path).read().to_pylist()
        anonymised += [r for r in rows if r["order_id"].startswith("ERASED-")]
    # The channel's own order ids are among the ones the person's orders replaced.
    assert len([r for r in anonymised if "W9999999999" not in r["order_id"]]) >= len(web)
    for row in anonymised:
        assert row["order_total"] is not None and row["ordered_at"] is not None
        for column in ("customer_email", "first_name", "last_name", "phone", "account_id",
                       "shipping_address", "birth_date", "postal_code", "_extra"):
            assert row[column] is None, column


def test_next_sync_removes_exactly_that_customer(story: Story) -> None:
    person, figures = story.person, story.sync.figures
    assert person.memberships > 0
    assert figures["adds"] == 0
    assert figures["removes"] == figures["accepted"] == person.memberships
    reasons: dict[str, int] = {}
    for pair in figures["pairs"]:
        for reason, n in pair["removes_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert reasons == {"erased": person.memberships}
    exports = story.settings.resolved_paths.data_dir / "exports"
    removals = [r for path in exports.rglob("*-remove-*.csv")
                for r in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(removals) == person.memberships
    assert all(person.customer_id in r and '"erased"' in r for r in removals)
    warehouse = str(story.settings.resolved_paths.warehouse)
    with duckdb.connect(warehouse, read_only=True) as con:
        state = con.execute("select count(*) from activation.sync_state where customer_id = ?",
                            [person.customer_id]).fetchall()[0][0]
        erased = con.execute("select request_id, matched_by from identity.erased_customers "
                             "where customer_id = ?", [person.customer_id]).fetchall()
        registry = con.execute("select status from identity.customer_ids where customer_id = ?",
                               [person.customer_id]).fetchall()
    assert state == 0
    assert erased == [(story.request["request_id"], "email")]
    assert registry == [("erased",)]  # the id registry never issues it again
    # The hashed keys that were delivered survive only in the removal notices.
    holders = {p.name for p in exports.rglob("*.csv")
               if any(v in p.read_text(encoding="utf-8") for v in person.delivered)}
    assert holders and all("-remove-" in name for name in holders)


def test_running_forget_again_is_a_no_op(story: Story) -> None:
    again = story.again
    assert again.exit_code == 0, again.output
    assert again.before == again.after
    assert "already" in again.output and "nothing left to remove" in again.output


def test_tombstones_block_reingestion_and_resolution(story: Story) -> None:
    settings = story.settings
    assert story.ingest.exit_code == 0, story.ingest.output
    entries = {e["file"]: e for e in lake.read_load_log(settings).to_pylist()}
    web = sum(1 for source, _ in story.person.records if source == "web_orders")
    expected = {"web_orders/web_orders_resent.csv": web,
                "email_subscribers/email_subscribers_new.csv": 2,
                "sms_contacts/sms_contacts_new.csv": 1}
    for file, erased in expected.items():
        entry = entries[file]
        assert entry["rows_erased"] == erased, file
        assert entry["rows_received"] == (entry["rows_loaded"] + entry["rows_quarantined"]
                                          + entry["rows_erased"]), file
    # the row that would have been quarantined (bad date) was erased instead, never written
    assert entries["email_subscribers/email_subscribers_new.csv"]["rows_quarantined"] == 0
    assert entries["web_orders/web_orders_resent.csv"]["rows_loaded"] > 0  # others still load
    # resolve brings nobody back, and the erased id is not reissued
    assert story.resolved_after == {"records": 0, "customer": 0}
    # the redacted landing files count as loaded: ingesting again adds nothing
    before = snapshot(settings.resolved_paths.lake / "raw")
    from cdp.ingest import ingest

    assert ingest(settings).figures["files_loaded"] == 0
    assert snapshot(settings.resolved_paths.lake / "raw") == before
