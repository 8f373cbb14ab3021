"""Steward overrides: must-link, cannot-link (unmerge) and shared identifiers, through the
`cdp override` commands and real resolve runs; they win, survive re-runs, and are logged."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner

from cdp.cli import cli
from identity import resolve
from identity.cluster import CANNOT_LINK_GUARD, MUST_LINK, Edge, Facts, cluster_records
from tests.identity.identity_state import (
    assert_consistent,
    customers,
    history,
    land,
    make_settings,
    order,
    registry,
    rows,
)

HOME_EMAIL = "kaya.ev@example.com"

# --- the clustering rules on hand-made facts --------------------------------------------------


def _facts(n: int, born: list[date | None] | None = None) -> Facts:
    return Facts(first_name=["ali"] * n, last_name=["kaya"] * n,
                 birth_date=born or [None] * n, loyalty_id=[None] * n, name_only=[False] * n)


def test_cannot_link_wins_over_any_chain_of_links_and_over_must_links() -> None:
    # 0-1 and 1-2 by rule, 2-3 by a must-link; 0 and 3 must stay apart
    roots, refusals = cluster_records(
        _facts(4), [Edge(0, 1, "email"), Edge(1, 2, "phone")],
        must_edges=[Edge(2, 3, MUST_LINK, override_id="OV2")],
        cannot_links=[(0, 3, "OV1")])
    assert roots[2] == roots[3] and roots[0] == roots[1]
    assert roots[0] != roots[3]
    assert [(r.guard, r.override_id) for r in refusals] == [(CANNOT_LINK_GUARD, "OV1")]


def test_a_must_link_passes_the_guards() -> None:
    facts = _facts(2, [date(1970, 1, 1), date(1990, 5, 5)])  # incompatible birth dates
    roots, refusals = cluster_records(facts, [Edge(0, 1, "splink")])
    assert roots[0] != roots[1] and refusals[0].guard == "birth_date"
    roots, _ = cluster_records(facts, [], must_edges=[Edge(0, 1, MUST_LINK, override_id="OV")])
    assert roots[0] == roots[1]


# --- commands and runs ----------------------------------------------------------------------


def _cdp(settings, *args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["--config", str(settings.root / "cdp.yaml"), *args],
                              obj={}, input=stdin)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = make_settings(tmp_path_factory.mktemp("overrides"))
    land(settings,
         # U1, U2 share an email, U2 and U3 a phone: one customer, wrongly (U1 is not U3)
         order("U1", email="u@example.com"),
         order("U2", email="u@example.com", phone="0532 100 00 02"),
         order("U3", phone="0532 100 00 02"),
         # one person, two birth dates (a typo the guards cannot tell from a namesake)
         order("M1", email="murat@example.com", first="Murat", last="Öz", born="1970-01-01"),
         order("M2", phone="0532 200 00 02", first="Murat", last="Öz", born="1990-05-05"),
         # a household email: the two orders are different people
         order("H1", email=HOME_EMAIL, phone="0532 300 00 01"),
         order("H2", email=HOME_EMAIL, phone="0532 300 00 02"),
         # bystanders so the model has something to learn from
         *(order(f"B{i}", email=f"b{i}@example.com", first=name, last="Demir",
                 born=f"198{i}-02-0{i}") for i, name in enumerate(["Ece", "Can", "Efe"], 1)),
         order("B4", email="b1@example.com", first="Ece", last="Demir", born="1981-02-01"))
    out: dict = {"settings": settings}
    resolve(settings)
    out["run1"] = run1 = customers(settings)
    out["add"] = [
        _cdp(settings, "override", "add", "cannot-link", "web_orders:U1", "web_orders:U3",
             "--author", "ayse", "--reason", "TICKET-1: different people"),
        _cdp(settings, "override", "add", "must-link", run1["web_orders:M1"],
             run1["web_orders:M2"], "--author", "ayse", "--reason", "TICKET-2: same member"),
        _cdp(settings, "override", "add", "shared", "email", "-", "--author", "mert",
             "--reason", "TICKET-3: household email", stdin=f" {HOME_EMAIL.upper()} \n"),
    ]
    out["conflict"] = _cdp(settings, "override", "add", "must-link", "web_orders:U3",
                           "web_orders:U1", "--author", "x", "--reason", "y")
    out["invalid"] = _cdp(settings, "override", "add", "shared", "email", "not-an-email@",
                          "--author", "x", "--reason", "y")
    out["list"] = _cdp(settings, "override", "list")
    resolve(settings)
    out["run2"] = customers(settings)
    assert_consistent(settings)
    out["history2"] = history(settings)
    out["refused2"] = rows(settings, "select * from identity.identity_links "
                                     "where refused_by = ?", [CANNOT_LINK_GUARD])
    resolve(settings)
    out["run3"] = customers(settings)
    out["history3"] = history(settings)
    out["remove"] = _cdp(settings, "override", "remove", "OV000001", "--author", "ayse")
    out["list_all"] = _cdp(settings, "override", "list", "--all")
    resolve(settings)
    out["run4"] = customers(settings)
    assert_consistent(settings)
    out["history4"] = history(settings)
    out["registry"] = registry(settings)
    return out


def test_the_commands_add_list_and_remove(story: dict) -> None:
    assert [r.exit_code for r in story["add"]] == [0, 0, 0], [r.output for r in story["add"]]
    listed = story["list"].output
    for oid in ("OV000001", "OV000002", "OV000003"):
        assert oid in listed
    assert "TICKET-1" in listed and "ayse" in listed
    assert HOME_EMAIL not in listed and "k***@example.com" in listed    # masked
    assert story["remove"].exit_code == 0
    assert "removed" in story["list_all"].output and "OV000001" in story["list_all"].output
    overrides = {r["override_id"]: r for r in rows(
        story["settings"], "select * from identity.steward_overrides")}
    assert overrides["OV000001"]["active"] is False
    assert overrides["OV000001"]["removed_by"] == "ayse"
    assert overrides["OV000003"]["identifier_value"] == HOME_EMAIL  # stored standardised


def test_contradicting_or_invalid_overrides_are_refused_clearly(story: dict) -> None:
    assert story["conflict"].exit_code == 1
    assert "OV000001 says cannot_link" in story["conflict"].output
    assert story["invalid"].exit_code == 1
    assert "not a valid email" in story["invalid"].output
    assert "not-an-email" not in story["invalid"].output            # never echoed


def test_customer_ids_are_bound_to_source_records(story: dict) -> None:
    (must,) = rows(story["settings"], "select * from identity.steward_overrides "
                                      "where kind = 'must_link'")
    assert {must["left_ref"], must["right_ref"]} == {"web_orders:M1", "web_orders:M2"}
    assert {must["left_customer_id"], must["right_customer_id"]} == {
        story["run1"]["web_orders:M1"], story["run1"]["web_orders:M2"]}


def test_an_unmerge_splits_the_customer_on_the_next_run(story: dict) -> None:
    run1, run2 = story["run1"], story["run2"]
    u = run1["web_orders:U1"]
    assert run1["web_orders:U3"] == u                                 # wrongly one customer
    assert run2["web_orders:U1"] == run2["web_orders:U2"] == u        # larger part keeps it
    assert run2["web_orders:U3"] != u
    (event,) = [h for h in story["history2"] if h["customer_id"] == u]
    assert event["event"] == "override_split"
    assert event["other_customer_id"] == run2["web_orders:U3"]
    assert event["evidence"]["overrides"][0]["override_id"] == "OV000001"
    assert event["evidence"]["overrides"][0]["reason"] == "TICKET-1: different people"
    assert any(link["refused_by"] == CANNOT_LINK_GUARD
               for link in event["evidence"]["refused_links"])
    assert story["refused2"]  # the refused link is in identity_links, with its guard


def test_a_must_link_merges_past_the_guards(story: dict) -> None:
    run1, run2 = story["run1"], story["run2"]
    assert run1["web_orders:M1"] != run1["web_orders:M2"]
    assert run2["web_orders:M1"] == run2["web_orders:M2"]
    (event,) = [h for h in story["history2"] if h["event"] == "override_merge"]
    reg = story["registry"]
    older = min(run1["web_orders:M1"], run1["web_orders:M2"], key=lambda c:
                reg[c]["issued_seq"])
    assert event["customer_id"] == older == run2["web_orders:M1"]
    assert event["evidence"]["overrides"][0]["override_id"] == "OV000002"
    assert any(link["link_type"] == MUST_LINK for link in event["evidence"]["links"])


def test_a_shared_identifier_no_longer_merges(story: dict) -> None:
    run1, run2 = story["run1"], story["run2"]
    assert run1["web_orders:H1"] == run1["web_orders:H2"]
    assert run2["web_orders:H1"] != run2["web_orders:H2"]
    (event,) = [h for h in story["history2"] if h["customer_id"] == run1["web_orders:H1"]]
    assert event["event"] == "override_split"
    assert event["evidence"]["overrides"][0]["override_id"] == "OV000003"
    (cls,) = rows(story["settings"], "select class from identity.identity_identifiers "
                                     "where kind = 'email' and value = ?", [HOME_EMAIL])
    assert cls["class"] == "shared"


def test_overrides_survive_re_runs(story: dict) -> None:
    assert story["run3"] == story["run2"]
    assert story["history3"] == story["history2"]


def test_removing_an_override_lets_the_evidence_merge_again(story: dict) -> None:
    run2, run4 = story["run2"], story["run4"]
    u, split_off = run2["web_orders:U1"], run2["web_orders:U3"]
    assert run4["web_orders:U3"] == run4["web_orders:U1"] == u       # the older id survives
    new = [h for h in story["history4"] if h not in story["history3"]]
    assert [(h["event"], h["customer_id"], h["other_customer_id"]) for h in new] == [
        ("merge", u, split_off)]
    assert story["registry"][split_off]["status"] == "merged"
    assert run4["web_orders:M1"] == run4["web_orders:M2"]             # the others still hold
    assert run4["web_orders:H1"] != run4["web_orders:H2"]


def test_erasure_takes_erased_records_and_values_out_of_the_state_tables() -> None:
    import json
    from datetime import datetime

    import duckdb

    from identity.state import ensure_tables, forget_records, mark_erased

    con = duckdb.connect()
    ensure_tables(con)
    con.execute("insert into identity.customer_id_history values (?, ?, ?, ?, ?, ?, ?)", [
        "R1", datetime(2026, 1, 1), "merge", "CA", "CB", 1, json.dumps({"links": [
            {"record_l": "web_orders:W1", "record_r": "web_orders:W2", "link_type": "email"}]})])
    now = datetime(2026, 1, 1)
    con.executemany("insert into identity.steward_overrides (override_id, kind, left_ref, "
                    "right_ref, identifier_kind, identifier_value, author, reason, created_at, "
                    "active) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                        ["OV1", "cannot_link", "web_orders:W1", "web_orders:W9", None, None,
                         "a", "r", now, True],
                        ["OV2", "shared_identifier", None, None, "email", HOME_EMAIL, "a", "r",
                         now, True],
                        ["OV3", "must_link", "web_orders:W7", "web_orders:W8", None, None, "a",
                         "r", now, True]])
    changed = forget_records(con, [("web_orders", "W1")], [("email", HOME_EMAIL)])
    assert changed == {"customer_id_history": 1, "steward_overrides": 2}
    (evidence,) = con.execute("select evidence from identity.customer_id_history").fetchone()
    assert "web_orders:W1" not in evidence and "web_orders:W2" in evidence
    rows = {r[0]: r[1:] for r in con.execute(
        "select override_id, left_ref, identifier_value, active, removed_by "
        "from identity.steward_overrides").fetchall()}
    assert rows["OV1"] == ("erased", None, False, "erasure")
    assert rows["OV2"] == (None, None, False, "erasure")
    assert rows["OV3"][2] is True                                   # untouched
    mark_erased(con, ["CA"])
    assert con.execute("select status from identity.customer_ids where customer_id = 'CA'"
                       ).fetchone() == ("erased",)
