"""Compatibility rules, people counting and guarded clustering on hand-made facts."""

from __future__ import annotations

import gc
from datetime import date

import pytest

from identity.cluster import NAME_ONLY_GUARD, Edge, Facts, cluster_records, paused_gc
from identity.guards import (
    birth_dates_compatible,
    first_names_compatible,
    names_compatible,
    people_count,
)


def test_first_name_compatibility() -> None:
    assert first_names_compatible("mehmet", "memo")          # nickname
    assert first_names_compatible("mehmet", "mehmte")        # typo
    assert first_names_compatible("ayse nur", "aysenur")     # compound written together
    assert first_names_compatible("ayse nur", "nur")         # one of two given names
    assert first_names_compatible("m", "mehmet")             # initial
    assert first_names_compatible("abdul", "abdullah")       # short form by prefix
    assert first_names_compatible(None, "ali")               # unknown fits anything
    assert not first_names_compatible("ali", "veli")
    assert not first_names_compatible("ayse", "zeynep")
    assert not first_names_compatible("emre", "elif")


def test_swapped_names_are_compatible() -> None:
    assert names_compatible(("yilmaz", "ayse"), ("ayse", "yilmaz"))
    assert not names_compatible(("mehmet", "yilmaz"), ("ayse", "yilmaz"))


def test_birth_date_compatibility() -> None:
    born = date(1985, 3, 12)
    assert birth_dates_compatible(born, born)
    assert birth_dates_compatible(born, date(1985, 3, 21))    # two digits swapped
    assert birth_dates_compatible(born, date(1985, 12, 3))    # day and month swapped
    assert birth_dates_compatible(born, date(1986, 3, 12))    # one digit
    assert birth_dates_compatible(born, None)
    assert not birth_dates_compatible(born, date(1990, 7, 1))
    assert not birth_dates_compatible(date(1982, 7, 1), date(2010, 5, 5))


def test_people_count() -> None:
    one_person = [("mehmet", "yilmaz", date(1982, 7, 1)), ("memo", "yilmaz", None),
                  ("mehmte", None, date(1982, 7, 1)), (None, None, None)]
    assert people_count(one_person) == 1
    family = [("mehmet", "yilmaz", date(1982, 7, 1)), ("ayse", "yilmaz", date(1985, 3, 12)),
              ("zeynep", "yilmaz", date(2010, 5, 5)), ("mehmet", "yilmaz", None)]
    assert people_count(family) == 3
    twins = [("ali", "kaya", date(2001, 1, 1)), ("veli", "kaya", date(2001, 1, 1))]
    assert people_count(twins) == 2
    assert people_count([(None, None, None)]) == 0


def _facts(rows: list[tuple]) -> Facts:
    return Facts(first_name=[r[0] for r in rows], last_name=[r[1] for r in rows],
                 birth_date=[r[2] for r in rows], loyalty_id=[r[3] for r in rows],
                 name_only=[r[4] for r in rows],
                 login_id=[r[5] if len(r) > 5 else None for r in rows])


def test_guards_refuse_family_twins_and_two_cards() -> None:
    facts = _facts([
        ("mehmet", "yilmaz", date(1982, 7, 1), "L1", False),   # 0
        ("ayse", "yilmaz", date(1985, 3, 12), None, False),    # 1 wife: shared email with 0
        ("ali", "kaya", date(2001, 1, 1), None, False),        # 2 twin
        ("veli", "kaya", date(2001, 1, 1), None, False),       # 3 twin, same birth date
        ("can", "ozturk", None, "L2", False),                  # 4
        ("can", "ozturk", None, "L3", False),                  # 5 same name, other card
        ("memo", "yilmaz", None, None, False),                 # 6 Mehmet's nickname
    ])
    edges = [Edge(0, 1, "splink"), Edge(2, 3, "splink"), Edge(4, 5, "splink"),
             Edge(0, 6, "email")]
    roots, refusals = cluster_records(facts, edges)
    assert roots[0] == roots[6]
    assert len({roots[0], roots[1]}) == 2
    assert len({roots[2], roots[3]}) == 2
    assert len({roots[4], roots[5]}) == 2
    assert sorted(r.guard for r in refusals) == ["birth_date", "first_name", "loyalty_id"]


def test_guard_uses_the_whole_cluster_not_just_the_linked_pair() -> None:
    # a record without a name links to Mehmet; a later link from it to Ayşe must be refused
    facts = _facts([
        ("mehmet", "yilmaz", date(1982, 7, 1), None, False),
        (None, None, None, None, False),                       # e.g. a cart with the email
        ("ayse", "yilmaz", date(1985, 3, 12), None, False),
    ])
    roots, refusals = cluster_records(facts, [Edge(0, 1, "email"), Edge(1, 2, "phone")])
    assert roots[0] == roots[1] != roots[2]
    assert refusals[0].guard == "birth_date"


def test_name_only_record_attaches_to_one_customer_but_never_bridges_two() -> None:
    facts = _facts([
        ("ahmet", "demir", date(1970, 1, 2), None, False),     # 0 customer A
        ("ahmet", "demir", date(1999, 9, 9), None, False),     # 1 customer B, same name
        ("ahmet", "demir", None, None, True),                  # 2 name only, links to both
        ("selin", "acar", date(1990, 4, 4), None, False),      # 3
        ("selin", "acar", None, None, True),                   # 4 name only, links to one
    ])
    edges = [Edge(0, 2, "splink"), Edge(2, 1, "splink"), Edge(3, 4, "splink")]
    roots, refusals = cluster_records(facts, edges)
    assert len({roots[0], roots[1], roots[2]}) == 3
    assert roots[3] == roots[4]
    assert {r.guard for r in refusals} == {NAME_ONLY_GUARD}


def test_guards_can_be_switched_off() -> None:
    facts = _facts([("ali", "kaya", None, None, False), ("veli", "kaya", None, None, False)])
    roots, _ = cluster_records(facts, [Edge(0, 1, "splink")], guards=())
    assert roots[0] == roots[1]


def test_two_accounts_are_two_people_unless_the_person_evidence_says_otherwise() -> None:
    facts = _facts([
        ("serife", "celik", None, None, False, "U1"),            # 0 namesakes whose gmail
        ("serife", "celik", None, None, False, "U2"),            # 1 addresses collide
        ("gursal", "sahin", date(1953, 1, 2), "6035-1", False),  # 2 lost card, re-enrolled:
        ("gursal", "sahin", date(1953, 1, 2), "6035-2", False),  # 3 same name and birth date
        ("aylin", "kara", date(1990, 1, 1), "6035-3", False),    # 4 two members of one
        ("aylin", "kara", None, "6035-4", False),                # 5 family? no birth date
    ])
    roots, refusals = cluster_records(
        facts, [Edge(0, 1, "email"), Edge(2, 3, "phone"), Edge(4, 5, "splink")])
    assert roots[0] != roots[1]
    assert roots[2] == roots[3]
    assert roots[4] != roots[5]
    assert sorted(r.guard for r in refusals) == ["login_id", "loyalty_id"]


def test_clustering_pauses_the_cycle_collector_and_restores_it() -> None:

    seen = []
    assert gc.isenabled()
    with paused_gc():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    gc.disable()  # a caller that paused it already keeps it paused
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValueError), paused_gc():  # restored when clustering fails too
        raise ValueError
    assert gc.isenabled()


def test_resolve_clusters_with_the_cycle_collector_paused(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Both runs (full and incremental) cluster through `identity.resolve.cluster`: the
    pause must be on there, around the union-find, not only available."""
    import importlib

    import pyarrow as pa

    # the module (the package exports a function of the same name)
    resolve = importlib.import_module("identity.resolve")

    class Seen(Exception):
        pass

    def spy(*args: object, **kwargs: object) -> None:
        raise Seen(gc.isenabled())

    monkeypatch.setattr(resolve, "cluster_records", spy)
    facts = pa.table({"record_key": ["a", "b"], "first_key": ["ali", "ali"],
                      "last_key": ["kaya", "kaya"], "birth_date": [None, None],
                      "loyalty_id": [None, None], "login_id": [None, None],
                      "name_only": [False, False]})
    links = pa.table({"record_l": ["a"], "record_r": ["b"], "link_type": ["email"],
                      "weight": pa.array([None], pa.float64())})
    with pytest.raises(Seen) as seen:
        resolve.cluster(None, 0.9, [], facts, links)  # type: ignore[arg-type]
    assert seen.value.args == (False,)
    assert gc.isenabled()
