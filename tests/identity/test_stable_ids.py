"""Stable customer ids: the id rules on their own, then across real resolve runs.

Rules (identity.stable_ids): unchanged clusters keep their id; a merge keeps the oldest id
(first issued, not the smallest) and logs the others as merged; a split keeps the id on the part
with most source records and gives the rest new ids; ids are never reused; re-running on
unchanged input changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cdp.config import Settings
from identity import resolve
from identity.ids import customer_id, new_customer_id
from identity.stable_ids import Overlap, assign_ids
from identity.state import new_run_id
from tests.identity.identity_state import (
    assert_consistent,
    customers,
    history,
    land,
    make_settings,
    order,
    registry,
    rows,
    snapshot,
)

# --- the rules on hand-made overlaps --------------------------------------------------------


def test_unchanged_clusters_keep_their_ids() -> None:
    a = assign_ids(["k1", "k2"], [Overlap("k1", "CA", 3), Overlap("k2", "CB", 1)],
                   {"CA", "CB"}, {"CA": 1, "CB": 2}, {"CA", "CB"})
    assert a.ids == {"k1": "CA", "k2": "CB"}
    assert not a.changes and not a.issued and not a.merged and not a.retired


def test_a_merge_keeps_the_oldest_id_not_the_smallest() -> None:
    # CZ was issued first although it sorts last
    a = assign_ids(["k1"], [Overlap("k1", "CA", 5), Overlap("k1", "CZ", 1)], {"CA", "CZ"},
                   {"CZ": 1, "CA": 2}, {"CA", "CZ"})
    assert a.ids == {"k1": "CZ"}
    assert a.merged == {"CA": "CZ"}
    (change,) = a.changes
    assert (change.event, change.customer_id, change.other_customer_id,
            change.source_records) == ("merge", "CZ", "CA", 5)


def test_a_split_keeps_the_id_on_the_part_with_most_source_records() -> None:
    a = assign_ids(["k1", "k9"], [Overlap("k1", "CA", 1), Overlap("k9", "CA", 3)], {"CA"},
                   {"CA": 1}, {"CA"})
    assert a.ids["k9"] == "CA"
    new = a.ids["k1"]
    assert new != "CA" and new.startswith("C") and len(new) == 17
    assert a.issued == [(new, "split")]
    (change,) = a.changes
    assert (change.event, change.customer_id, change.other_customer_id,
            change.source_records, change.kept_cluster) == ("split", "CA", new, 1, "k9")


def test_a_tied_split_keeps_the_id_on_the_part_with_the_smallest_record_key() -> None:
    a = assign_ids(["k2", "k1"], [Overlap("k2", "CA", 2), Overlap("k1", "CA", 2)], {"CA"},
                   {"CA": 1}, {"CA"})
    assert a.ids["k1"] == "CA" and a.ids["k2"] != "CA"


def test_records_that_join_another_customer_are_logged_as_a_split_of_theirs() -> None:
    a = assign_ids(["ka", "kb"], [Overlap("ka", "CA", 2), Overlap("kb", "CA", 1),
                                  Overlap("kb", "CB", 4)], {"CA", "CB"}, {"CA": 1, "CB": 2},
                   {"CA", "CB"})
    assert a.ids == {"ka": "CA", "kb": "CB"} and not a.issued
    (change,) = a.changes
    assert (change.event, change.customer_id, change.other_customer_id,
            change.source_records) == ("split", "CA", "CB", 1)


def test_a_customer_with_no_source_records_left_is_retired() -> None:
    a = assign_ids(["k1"], [Overlap("k1", "CA", 1)], {"CA", "CB"}, {"CA": 1, "CB": 2},
                   {"CA", "CB"})
    assert a.retired == ["CB"]


def test_new_ids_never_reuse_an_id_issued_before() -> None:
    retired = customer_id(["k1"])  # what the cluster would get on a first run
    a = assign_ids(["k1"], [], set(), {retired: 1}, {retired})
    assert a.ids["k1"] != retired
    assert a.ids["k1"] == new_customer_id("k1", {retired})
    assert new_customer_id("k1", set()) == retired  # a fresh start gives the first choice


def test_run_ids_sort_in_run_order_within_one_second() -> None:
    # the last run is the greatest run id: two runs in one second must not sort by chance
    start = datetime(2026, 11, 24, 7, 0, 0, 999)
    ids = [new_run_id(start + timedelta(microseconds=i)) for i in range(50)]
    assert sorted(ids) == ids and len(set(ids)) == 50
    assert ids[0] > "20261124T070000-ffffff"  # an id of the older form sorts before


# --- across real runs -----------------------------------------------------------------------


def _key_after(anchor: str) -> str:
    """An order id whose record's first-choice id sorts *before* `anchor`'s: so "keeps the
    oldest id" cannot pass by keeping the smallest."""
    target = customer_id([f"web_orders:{anchor}"])
    return next(f"W4x{i}" for i in range(1000)
                if customer_id([f"web_orders:W4x{i}"]) < target)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = make_settings(tmp_path_factory.mktemp("stable_ids"))
    c_order = _key_after("W3")
    land(settings,
         *(order(f"W{i}", email="p@example.com", first="Pelin", last="Aksoy")     # P
           for i in (1, 2)),
         order("W3", phone="0532 300 00 03"),                                     # D
         *(order(f"W{i}", email="s@example.com", first="Selim", last="Çakır")     # S
           for i in (5, 6, 7)),
         order("W8", email="x@example.com"),                                      # X
         order("W9", phone="0532 900 00 09"), order("W10", phone="0532 900 00 09"))  # Y
    out: dict = {"settings": settings, "c_order": c_order}
    resolve(settings)
    out["run1"] = customers(settings)
    assert_consistent(settings)
    out["snap1"] = snapshot(settings)
    resolve(settings)
    out["run2"] = customers(settings)
    out["snap2"] = snapshot(settings)
    land(settings,
         order(c_order, email="c@example.com"),                                   # C: new
         order("W11", email="new@example.com", first="Nur", last="Güneş"),        # new person
         order("W7", email="s.other@example.com"),                # re-delivered: leaves S
         order("W12", email="x@example.com", phone="0532 900 00 09"))             # X + Y
    resolve(settings)
    out["run3"] = customers(settings)
    assert_consistent(settings)
    out["history3"] = history(settings)
    land(settings,
         order("W13", email="c@example.com", phone="0532 300 00 03"),             # C + D
         order("W12", email="w12@example.com", phone="0532 900 00 09"))           # X leaves Y
    resolve(settings)
    out["run4"] = customers(settings)
    assert_consistent(settings)
    out["history4"] = history(settings)
    out["registry"] = registry(settings)
    return out


def test_rerunning_on_unchanged_input_changes_nothing(story: dict) -> None:
    assert story["run2"] == story["run1"]
    assert story["snap2"] == story["snap1"]
    runs = rows(story["settings"], "select * from identity.resolve_runs order by run_id")
    assert [r["mode"] for r in runs] == ["full"] * 4
    assert (runs[1]["created"], runs[1]["merged"], runs[1]["split"]) == (0, 0, 0)


def test_a_new_batch_keeps_every_unaffected_id(story: dict) -> None:
    run1, run3 = story["run1"], story["run3"]
    for ref in ("web_orders:W1", "web_orders:W2", "web_orders:W3", "web_orders:W9"):
        assert run3[ref] == run1[ref]
    new = run3["web_orders:W11"]
    assert new not in run1.values() and story["registry"][new]["origin"] == "new"


def test_a_split_keeps_the_id_on_the_larger_part_and_is_logged(story: dict) -> None:
    run1, run3 = story["run1"], story["run3"]
    s = run1["web_orders:W5"]
    assert run3["web_orders:W5"] == run3["web_orders:W6"] == s
    split_off = run3["web_orders:W7"]
    assert split_off != s and split_off not in run1.values()
    (event,) = [h for h in story["history3"] if h["event"] == "split"]
    assert (event["customer_id"], event["other_customer_id"], event["source_records"]) == (
        s, split_off, 1)
    assert event["evidence"]["kept_by"] == s
    assert story["registry"][split_off]["origin"] == "split"


def test_a_merge_keeps_the_oldest_id_and_logs_the_evidence(story: dict) -> None:
    run1, run3 = story["run1"], story["run3"]
    x, y = run1["web_orders:W8"], run1["web_orders:W9"]
    reg = story["registry"]
    older, younger = sorted((x, y), key=lambda c: reg[c]["issued_seq"])
    assert run3["web_orders:W8"] == run3["web_orders:W9"] == run3["web_orders:W12"] == older
    (event,) = [h for h in story["history3"] if h["event"] == "merge"]
    assert (event["customer_id"], event["other_customer_id"], event["source_records"]) == (
        older, younger, 1)
    links = event["evidence"]["links"]
    assert {link["link_type"] for link in links} >= {"email", "phone"}
    assert any("web_orders:W12" in (link["record_l"], link["record_r"]) for link in links)


def test_the_oldest_id_wins_even_when_it_is_not_the_smallest(story: dict) -> None:
    run1, run4 = story["run1"], story["run4"]
    d = run1["web_orders:W3"]
    c = story["run3"][f"web_orders:{story['c_order']}"]
    assert c < d  # the younger id sorts first...
    assert run4["web_orders:W3"] == run4[f"web_orders:{story['c_order']}"] == d  # ...and loses
    reg = story["registry"]
    assert (reg[c]["status"], reg[c]["merged_into"]) == ("merged", d)
    assert reg[c]["issued_seq"] > reg[d]["issued_seq"]


def test_ids_are_never_reused(story: dict) -> None:
    run1, run4 = story["run1"], story["run4"]
    x = run1["web_orders:W8"]  # merged away in run 3
    back = run4["web_orders:W8"]  # alone again in run 4: its first-choice id is x
    assert customer_id(["web_orders:W8"]) == x
    assert back != x and back.startswith("C")
    reg = story["registry"]
    assert reg[x]["status"] == "merged"
    assert len(reg) == len(set(reg))
    every_id_ever = {c for run in ("run1", "run2", "run3", "run4") for c in story[run].values()}
    assert every_id_ever <= set(reg)


def test_history_and_registry_agree(story: dict) -> None:
    reg = story["registry"]
    merged = {h["other_customer_id"]: h["customer_id"] for h in story["history4"]
              if h["event"] == "merge"}
    assert merged == {c: r["merged_into"] for c, r in reg.items() if r["status"] == "merged"}
    for h in story["history4"]:
        assert h["run_id"] and h["changed_at"] and h["source_records"] >= 1


def test_a_warehouse_from_before_the_registry_keeps_its_ids(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path)
    land(settings, order("W1", email="a@example.com"), order("W2", email="a@example.com"))
    resolve(settings)
    before = customers(settings)
    import duckdb

    con = duckdb.connect(str(settings.resolved_paths.warehouse))
    for table in ("customer_ids", "customer_id_history", "resolve_runs", "resolved_batches"):
        con.execute(f"drop table identity.{table}")
    con.close()
    resolve(settings)
    assert customers(settings) == before
    (entry,) = registry(settings).values()
    assert entry["origin"] == "legacy" and entry["status"] == "active"
