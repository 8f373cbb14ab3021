"""Training shortcuts in `identity.model` against what Splink itself computes.

`model.estimate_u` counts the u sample's pairs per agreement pattern in one pass and
`model.training_pairs` counts the EM rules' pairs in one query; both rebuild results Splink has
its own functions for (and lean on Splink internals). Here they are held to Splink's results on
the same records, so a Splink upgrade that changes the meaning fails here, not in accuracy.
"""

from __future__ import annotations

import logging
import random
import warnings
from typing import Any

import pyarrow as pa
import pytest
from splink import Linker

from cdp.config import Settings
from identity import model
from identity.engines.duckdb import DuckDBEngine

FIRST = ["ayse", "mehmet", "fatma", "ali", "zeynep", "mustafa", "emine", "ahmet", None]
LAST = ["yilmaz", "kaya", "demir", "sahin", "celik", "yildiz", None]
CITIES = ["istanbul", "ankara", "izmir", None]


def _records(n: int, seed: int) -> pa.Table:
    """Splink input rows (model.SPLINK_INPUT_COLUMNS): people with repeats and typos, so every
    comparison reaches several of its levels."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        person = rng.randrange(n // 3)
        first, last = FIRST[person % len(FIRST)], LAST[person % len(LAST)]
        if first and rng.random() < 0.2:  # a typo
            first = first[:-1] + "x"
        rows.append({
            "unique_id": f"r{i}", "first_name": first, "first_canon": first,
            "last_name": last,
            "birth_date": (None if rng.random() < 0.2
                           else f"19{60 + person % 40}-0{1 + person % 9}-1{person % 10}"),
            "email": None if rng.random() < 0.3 else f"p{person}@example.com",
            "phone": None if rng.random() < 0.4 else f"+90532{person:07d}",
            "postcode": None if rng.random() < 0.3 else f"34{person % 50:03d}",
            "city": CITIES[person % len(CITIES)],
            "address": None if rng.random() < 0.5 else f"{person % 30} ataturk cd",
        })
    return pa.Table.from_pylist(rows)


@pytest.fixture
def engine(settings: Settings) -> Any:
    engine = DuckDBEngine(settings)
    engine.from_arrow("splink_input", _records(600, seed=5))
    yield engine
    engine.close()


def _u(settings_json: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(c["output_column_name"], level.get("label_for_charts", str(i))):
            level.get("u_probability")
            for c in settings_json["comparisons"]
            for i, level in enumerate(c["comparison_levels"]) if not level.get("is_null_level")}


def test_u_in_one_pass_equals_splinks_own_estimate(engine: DuckDBEngine) -> None:
    rules = [rule for _, rule in model.CANDIDATE_BLOCKING_RULES]
    ours = model.estimate_u(engine, "splink_input", rules, max_pairs=10_000_000, records=600)

    # Splink's own: every pair of the same records (the sample is all 600 of them here)
    splinks = Linker(engine.splink_db_api().register("splink_input"),
                     model.settings_creator(rules), log_level=logging.ERROR)
    rows = 600
    splinks.training.estimate_u_using_random_sampling(max_pairs=rows * (rows - 1) // 2 + rows,
                                                      num_chunks=1)
    expected = _u(splinks.misc.save_model_to_json())
    found = _u(ours)
    assert found.keys() == expected.keys()
    assert any(isinstance(u, float) and 0 < u < 1 for u in found.values())
    for level, u in expected.items():
        if isinstance(u, float):
            assert found[level] == pytest.approx(u, rel=1e-12), level
        else:  # a level no pair reached: "not observed" in both
            assert found[level] == u, level


def test_em_rule_pairs_equal_splinks_blocking_analysis(engine: DuckDBEngine) -> None:
    linker = Linker(engine.splink_db_api().register("splink_input"),
                    model.settings_creator([]), log_level=logging.ERROR)
    counted = model.training_pairs(engine, "splink_input", linker, n_records=600)
    expected = []
    for rule in model.TRAINING_RULES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            found = linker.blocking_analysis.count_comparisons_from_blocking_rules(
                [rule], record_sample_proportion=1.0)[-1]
        expected.append(int(found["marginal_comparison_count"]))
    assert counted == expected and all(n > 0 for n in counted)
