"""Evaluation metrics against values computed by hand, and the evaluate step's file handling."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from cdp.config import Settings
from cdp.errors import CdpError
from identity.evaluate import contingency_metrics, evaluate
from identity.store import write_tables


def _pairs(groups: dict[str, str]) -> set[frozenset[str]]:
    return {frozenset((a, b)) for a, b in itertools.combinations(sorted(groups), 2)
            if groups[a] == groups[b]}


def test_contingency_metrics_match_hand_computed_values() -> None:
    # predicted: A = {1, 2, 3}, B = {4, 5}, C = {6}; truth: X = {1, 2}, Y = {3, 4, 5, 6}
    predicted = {"1": "A", "2": "A", "3": "A", "4": "B", "5": "B", "6": "C"}
    truth = {"1": "X", "2": "X", "3": "Y", "4": "Y", "5": "Y", "6": "Y"}
    con = duckdb.connect()
    con.register("assignments", pa.table({
        "cluster": [predicted[k] for k in predicted], "entity": [truth[k] for k in predicted]}))
    m = contingency_metrics(con, "assignments")
    # pairs: predicted {12,13,23,45} = 4, true {12, 34,35,36,45,46,56} = 7, common {12,45} = 2
    assert (m["true_positive_pairs"], m["predicted_pairs"], m["true_pairs"]) == (2, 4, 7)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 7)
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (2 / 7) / (1 / 2 + 2 / 7))
    # B-cubed precision per record: 1:2/3 2:2/3 3:1/3 4:1 5:1 6:1 -> 14/3 / 6
    assert m["bcubed_precision"] == pytest.approx((14 / 3) / 6)
    # B-cubed recall per record: 1:1 2:1 3:1/4 4:2/4 5:2/4 6:1/4 -> 3.5 / 6
    assert m["bcubed_recall"] == pytest.approx(3.5 / 6)
    assert (m["predicted_clusters"], m["true_entities"], m["records"]) == (3, 2, 6)
    # cross-check the pair counts by enumeration
    assert len(_pairs(predicted) & _pairs(truth)) == m["true_positive_pairs"]


def test_perfect_and_all_singletons() -> None:
    con = duckdb.connect()
    con.register("same", pa.table({"cluster": ["a", "a", "b"], "entity": ["x", "x", "y"]}))
    m = contingency_metrics(con, "same")
    assert m["precision"] == m["recall"] == m["f1"] == m["bcubed_f1"] == 1.0
    con.register("alone", pa.table({"cluster": ["a", "b", "c"], "entity": ["x", "x", "x"]}))
    m = contingency_metrics(con, "alone")
    assert m["recall"] == 0.0 and m["precision"] == 1.0 and m["f1"] == 0.0


def _clusters(settings: Settings, rows: list[tuple[str, str, str]]) -> None:
    empty = pa.table({"x": pa.array([], pa.string())})
    write_tables(settings, {
        "identity_clusters": pa.table({
            "source": [r[0] for r in rows], "source_record_id": [r[1] for r in rows],
            "customer_id": [r[2] for r in rows], "record_key": [f"{r[0]}:{r[1]}" for r in rows]}),
        "identity_records": empty, "identity_links": empty, "golden_profiles": empty,
        "identity_identifiers": empty,
    })


def test_evaluate_reads_csv_and_parquet_and_scores_missing_records_as_singletons(
        settings: Settings, tmp_path: Path) -> None:
    _clusters(settings, [("web_orders", "W1", "C1"), ("web_orders", "W2", "C1"),
                         ("carts", "K1", "C2"), ("carts", "K9", "C3")])
    truth = pa.table({"source": ["web_orders", "web_orders", "carts", "sms_contacts"],
                      "source_record_id": ["W1", "W2", "K1", "S1"],
                      "entity_id": ["P1", "P1", "P1", "P1"]})
    csv = tmp_path / "truth.csv"
    duckdb.connect().register("t", truth).sql("select * from t").write_csv(str(csv))
    summary = evaluate(settings, csv)
    f = summary.figures
    # 4 truth records of one person; predicted {W1, W2}, {K1}, {S1 unresolved}: 1 of 6 pairs
    assert (f["true_positive_pairs"], f["predicted_pairs"], f["true_pairs"]) == (1, 1, 6)
    assert f["precision"] == 1.0 and f["recall"] == pytest.approx(1 / 6)
    assert f["truth_records_without_customer"] == 1
    assert f["resolved_records_not_in_truth"] == 1
    written = json.loads((settings.resolved_paths.artefacts / "identity" /
                          "evaluation.json").read_text())
    assert written["recall"] == pytest.approx(1 / 6)
    parquet = tmp_path / "truth.parquet"
    import pyarrow.parquet as pq

    pq.write_table(truth, parquet)
    assert evaluate(settings, parquet).figures["f1"] == pytest.approx(f["f1"])


def test_evaluate_rejects_bad_truth_files(settings: Settings, tmp_path: Path) -> None:
    _clusters(settings, [("web_orders", "W1", "C1")])
    bad = tmp_path / "bad.csv"
    bad.write_text("source,record,entity_id\nweb_orders,W1,P1\n")
    with pytest.raises(CdpError, match="source_record_id"):
        evaluate(settings, bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("source,source_record_id,entity_id\nweb_orders,W1,P1\nweb_orders,W1,P2\n")
    with pytest.raises(CdpError, match="more than one entity_id"):
        evaluate(settings, twice)
    with pytest.raises(CdpError, match="does not exist"):
        evaluate(settings, tmp_path / "missing.csv")


def test_evaluate_without_resolve_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    truth = tmp_path / "t.csv"
    truth.write_text("source,source_record_id,entity_id\nweb_orders,W1,P1\n")
    with pytest.raises(CdpError, match="cdp resolve"):
        evaluate(settings, truth)
