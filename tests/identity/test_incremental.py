"""`resolve --incremental`: only new batches are linked, the result agrees with a full run on
the same data (same customers, same ids, same history), and nothing new changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from cdp.config import Settings, load_settings
from cdp.generate.late import land_late_files, split_landing
from identity import evaluate, resolve
from identity.evaluate import contingency_metrics
from tests.identity.identity_state import (
    assert_consistent,
    customers,
    history,
    land,
    make_settings,
    order,
    rows,
    snapshot,
)


def _copy_warehouse(settings: Settings, name: str) -> Settings:
    """Settings on a copy of the current warehouse (same lake, same artefacts)."""
    target = settings.resolved_paths.warehouse.with_name(f"{name}.duckdb")
    shutil.copyfile(settings.resolved_paths.warehouse, target)
    return load_settings(settings.root / "cdp.yaml", env={"CDP_WAREHOUSE": str(target)})


def _events(settings: Settings, since: str) -> list[tuple]:
    return sorted((h["event"], h["customer_id"], h["other_customer_id"], h["source_records"])
                  for h in history(settings) if h["run_id"] > since)


def _last_run(settings: Settings) -> str:
    return rows(settings, "select max(run_id) as r from identity.resolve_runs")[0]["r"]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = make_settings(tmp_path_factory.mktemp("incremental"))
    land(settings,
         order("W1", email="p@example.com", first="Pelin", last="Aksoy"),
         order("W2", email="p@example.com", phone="0532 100 00 02", first="Pelin",
               last="Aksoy"),
         order("W3", phone="0532 300 00 03"),                              # D: alone
         order("W8", email="x@example.com"),                               # X
         order("W9", phone="0532 900 00 09"), order("W10", phone="0532 900 00 09"),  # Y
         order("W40", phone="0532 400 00 40"),                             # R: alone
         order("W41", email="k@example.com"), order("W42", email="k@example.com"),  # K
         *(order(f"B{i}", email=f"b{i}@example.com", first=name, last="Demir",
                 born=f"198{i}-02-0{i}") for i, name in enumerate(["Ece", "Can", "Efe"], 1)))
    resolve(settings)
    out: dict = {"settings": settings, "before": customers(settings),
                 "run0": _last_run(settings)}
    land(settings,
         order("W20", email="p@example.com", first="Pelin", last="Aksoy",
               shipping_address="Yeni Sok. 1"),                           # attaches to P
         order("W21", email="nur@example.com", first="Nur", last="Güneş"),  # a new person
         order("W22", email="x@example.com", phone="0532 900 00 09"),       # joins X and Y
         order("W23", email="p@example.com", first="Pelin", last="Aksoy",   # same data as
               shipping_address="Atatürk Cad. No:W1"),                      # W1: its record
         order("W3", phone="0532 100 00 02"),              # re-delivered: D's row moves to P
         # re-delivered with the very identity data of K's first order: joins that record, so
         # R's only row is now K's (R, issued first, keeps its id: K is merged into it)
         order("W40", email="k@example.com", shipping_address="Atatürk Cad. No:W41"))
    full = _copy_warehouse(settings, "full")
    out["summary"] = resolve(settings, incremental=True)
    out["incremental"] = customers(settings)
    assert_consistent(settings)
    out["inc_events"] = _events(settings, out["run0"])
    out["snap"] = snapshot(settings)
    out["again"] = resolve(settings, incremental=True)
    out["snap_again"] = snapshot(settings)
    resolve(full)
    out["full"] = customers(full)
    out["full_events"] = _events(full, out["run0"])
    assert_consistent(full)
    out["golden"] = rows(settings, "select * "
                                   "from identity.golden_profiles order by customer_id")
    out["full_golden"] = rows(full, "select * "
                                    "from identity.golden_profiles order by customer_id")
    return out


def test_new_records_attach_create_and_merge(story: dict) -> None:
    before, after = story["before"], story["incremental"]
    p = before["web_orders:W1"]
    assert after["web_orders:W20"] == after["web_orders:W23"] == p
    assert after["web_orders:W21"] not in before.values()
    assert after["web_orders:W8"] == after["web_orders:W9"] == after["web_orders:W22"]
    f = story["summary"].figures
    assert f["new_batches"] == 1 and sum(f["rows_in"].values()) == 6
    assert f["ids"]["created"] == 1
    assert f["attached_records"] >= 2          # W20, W22 (W23 joined an existing record)
    rows_ = dict(story["summary"].rows)
    assert rows_["new customers"] == 1
    # X with Y; D (its row moved) with P; K with R (R's row moved)
    assert rows_["merges / splits logged"] == "3 / 0"


def test_a_row_with_existing_identity_data_joins_that_record(story: dict) -> None:
    (record,) = rows(story["settings"], """
        select record_key, n_rows from identity.identity_records
        where record_key in (select record_key from identity.identity_clusters
                             where source_record_id = 'W23')""")
    assert record == {"record_key": "web_orders:W1", "n_rows": 2}
    before, after = story["before"], story["incremental"]
    r, k = before["web_orders:W40"], before["web_orders:W41"]
    assert after["web_orders:W40"] == after["web_orders:W41"] == after["web_orders:W42"] == r
    assert k not in after.values()


def test_incremental_agrees_with_a_full_run(story: dict) -> None:
    assert story["incremental"] == story["full"]                    # same customers, same ids
    assert story["inc_events"] == story["full_events"]              # same merges and splits
    assert story["golden"] == story["full_golden"]


def test_nothing_new_changes_nothing(story: dict) -> None:
    again = story["again"]
    assert again.figures["up_to_date"] is True
    assert "nothing written" in again.notes[0]
    assert story["snap_again"] == story["snap"]


def test_an_unmerge_takes_effect_on_the_next_incremental_run(story: dict,
                                                             tmp_path: Path) -> None:
    settings = story["settings"]
    from identity.overrides import add_override

    p = customers(settings)["web_orders:W1"]
    add_override(settings, "cannot-link", "web_orders:W20", "web_orders:W1", author="ayse",
                 reason="TICKET-9")
    full = _copy_warehouse(settings, "full_override")
    since = _last_run(settings)
    summary = resolve(settings, incremental=True)
    assert summary.figures["new_batches"] == 0
    after = customers(settings)
    assert after["web_orders:W1"] == p and after["web_orders:W20"] != p
    assert_consistent(settings)
    resolve(full)
    assert customers(full) == after
    assert _events(full, since) == _events(settings, since)
    assert [e[0] for e in _events(settings, since)] == ["override_split"]


def test_incremental_needs_a_previous_full_run(tmp_path: Path) -> None:
    from cdp.errors import CdpError

    settings = make_settings(tmp_path)
    land(settings, order("W1", email="a@example.com"))
    with pytest.raises(CdpError, match="full `cdp resolve` first"):
        resolve(settings, incremental=True)


# --- agreement on generated data ------------------------------------------------------------

# Measured (seed 3, 300 people, 10% of rows held back): partitions agree to pairwise F1 0.99+;
# bars leave room for the documented differences (saved model, name-swap statistics).
MIN_AGREEMENT_F1 = 0.98
MAX_F1_LOSS = 0.01


def test_agreement_with_a_full_run_on_generated_data(tmp_path: Path) -> None:
    from cdp.generate import generate
    from cdp.ingest import ingest

    settings = make_settings(tmp_path)
    generate(settings, people=300, seed=3)
    held = split_landing(settings.resolved_paths.landing, tmp_path / "late", 350, seed=3)
    ingest(settings)
    resolve(settings)
    land_late_files(settings.resolved_paths.landing, tmp_path / "late")
    ingest(settings)
    full = _copy_warehouse(settings, "full")
    summary = resolve(settings, incremental=True)
    assert sum(summary.figures["rows_in"].values()) == held
    assert_consistent(settings)
    resolve(full)
    con = duckdb.connect()
    con.execute("attach ? as inc (read_only)", [str(settings.resolved_paths.warehouse)])
    con.execute("attach ? as ful (read_only)", [str(full.resolved_paths.warehouse)])
    con.execute("""create view both_runs as
        select i.customer_id as cluster, f.customer_id as entity
        from inc.identity.identity_clusters i
        join ful.identity.identity_clusters f using (source, source_record_id)""")
    agreement = contingency_metrics(con, "both_runs")
    n_inc, n_full = con.execute("""select (select count(*) from inc.identity.identity_clusters),
                                          (select count(*) from ful.identity.identity_clusters)
                                """).fetchall()[0]
    same_id = con.execute("select avg(cast(cluster = entity as int)) from both_runs"
                          ).fetchall()[0][0]
    con.close()
    truth = settings.resolved_paths.truth
    inc_f1 = evaluate(settings, truth).figures["f1"]
    full_f1 = evaluate(full, truth).figures["f1"]
    print(f"agreement F1 {agreement['f1']:.4f}, same id {same_id:.4f}, "
          f"F1 vs truth: incremental {inc_f1:.4f}, full {full_f1:.4f}")
    assert n_inc == n_full                      # every source record resolved in both
    assert agreement["f1"] >= MIN_AGREEMENT_F1
    assert same_id >= MIN_AGREEMENT_F1
    assert inc_f1 >= full_f1 - MAX_F1_LOSS


def test_blocking_columns_of_models_saved_on_either_engine() -> None:
    from identity.incremental import blocking_columns

    def rules(*texts: str) -> dict:
        return {"blocking_rules_to_generate_predictions": [
            {"blocking_rule": t, "sql_dialect": "any"} for t in texts]}

    duckdb_model = rules('l."email" = r."email"',
                         '(l."first_name" = r."first_name") AND (l."birth_date" = r."birth_date")')
    spark_model = rules("l.`email` = r.`email`",
                        "(l.`first_name` = r.`first_name`) AND (l.`birth_date` = r.`birth_date`)")
    expected = [["email"], ["first_name", "birth_date"]]
    assert blocking_columns(duckdb_model) == blocking_columns(spark_model) == expected
    # a rule of another shape: every existing record is a candidate
    assert blocking_columns(rules('substr(l."email", 1, 3) = substr(r."email", 1, 3)')) is None
