"""The probabilistic model: Splink settings, blocking chosen by measured counts, EM training.

Everything here is engine-neutral: comparisons come from Splink's libraries (which write each
backend's SQL dialect), and the engine only hands over Splink's database API.

Modelling choices, for hard omnichannel data:
- Given names compare exactly (with term-frequency adjustment: a match on "Mehmet" says less
  than one on "Tarkan"), then as nickname/short form ("Memo" ~ "Mehmet"), then by Jaro-Winkler.
- Emails compare exactly only: usernames are built from names, so a "similar email" level would
  count the name evidence twice.
- Address, postcode and city are one location comparison (the best level that holds), because
  they are not independent and households share all three.
- Household members share surname, address, landline and sometimes email; the model may score
  them high, which is why clustering has guards (`identity.cluster`).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

from identity.engines.base import Engine
from identity.store import write_text_atomic

logger = logging.getLogger(__name__)

# What Splink sees of an identity record: comparison keys only (folded names, canonical
# identifiers); junk identifier values are already removed.
SPLINK_INPUT_COLUMNS = """
    record_key as unique_id, first_key as first_name, first_canon, last_key as last_name,
    cast(birth_date as varchar) as birth_date, email, phone, postcode, city_key as city,
    address_key as address"""

# Candidate blocking rules, most useful first. Each is kept only if the comparisons it adds stay
# within the budget (measured on the data with Splink's blocking analysis).
CANDIDATE_BLOCKING_RULES: list[tuple[str, Any]] = [
    ("email", block_on("email")),
    ("phone", block_on("phone")),
    ("first_name+last_name", block_on("first_name", "last_name")),
    ("last_name+birth_date", block_on("last_name", "birth_date")),
    ("first_canon+birth_date", block_on("first_canon", "birth_date")),
    ("first_canon+last_name", block_on("first_canon", "last_name")),
    ("birth_date+postcode", block_on("birth_date", "postcode")),
    ("first_name+address", block_on("first_name", "address")),
]
# Comparisons one rule may add: generous for small data, ~60 per record for large data.
MIN_RULE_BUDGET = 2_000_000
RULE_BUDGET_PER_RECORD = 60
U_SAMPLE_PAIRS = 1_000_000
MIN_U_SAMPLE_PAIRS = 100_000
# Links between this and the match threshold never merge customers; they only let a record
# that is left alone join the single customer they point to (identity.cluster).
ATTACH_THRESHOLD = 0.5
EM_MAX_PAIRS = 500_000  # per EM session: enough pairs for stable m estimates, bounded time
EXACT_COUNT_RECORDS = 1_000_000  # above this, blocking counts are estimated from a sample
MIN_EM_PAIRS = 50
# EM sessions, one per rule (blocking columns; null never blocks)
TRAINING_RULE_COLUMNS = [("first_name", "last_name"), ("birth_date",), ("email",)]
TRAINING_RULES = [block_on(*columns) for columns in TRAINING_RULE_COLUMNS]


def comparisons() -> list[Any]:
    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_description="given name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
            cll.ExactMatchLevel("first_canon").configure(
                label_for_charts="same name or nickname (Memo ~ Mehmet)"),
            cll.JaroWinklerLevel("first_name", 0.92),
            cll.JaroWinklerLevel("first_name", 0.80),
            cll.ElseLevel(),
        ],
    )
    last_name = cl.CustomComparison(
        output_column_name="last_name",
        comparison_description="surname",
        comparison_levels=[
            cll.NullLevel("last_name"),
            cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("last_name", 0.92),
            cll.JaroWinklerLevel("last_name", 0.80),
            cll.ElseLevel(),
        ],
    )
    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.DamerauLevenshteinLevel("birth_date", 1).configure(
                label_for_charts="one typing slip apart"),
            cll.ElseLevel(),
        ],
    )
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_description="email (exact only: usernames are built from names)",
        comparison_levels=[cll.NullLevel("email"), cll.ExactMatchLevel("email"), cll.ElseLevel()],
    )
    phone = cl.CustomComparison(
        output_column_name="phone",
        comparison_description="phone (E.164)",
        comparison_levels=[
            cll.NullLevel("phone"),
            cll.ExactMatchLevel("phone"),
            cll.DamerauLevenshteinLevel("phone", 1).configure(
                label_for_charts="one typing slip apart"),
            cll.ElseLevel(),
        ],
    )
    location = cl.CustomComparison(
        output_column_name="location",
        comparison_description="address, postcode, city (best level that holds)",
        comparison_levels=[
            cll.And(cll.NullLevel("address"), cll.NullLevel("postcode"),
                    cll.NullLevel("city")).configure(is_null_level=True,
                                                     label_for_charts="no location to compare"),
            cll.ExactMatchLevel("address").configure(label_for_charts="same address"),
            cll.JaroWinklerLevel("address", 0.9).configure(label_for_charts="similar address"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
            cll.ExactMatchLevel("city", term_frequency_adjustments=True).configure(
                label_for_charts="same city"),
            cll.ElseLevel(),
        ],
    )
    return [first_name, last_name, birth_date, email, phone, location]


def settings_creator(blocking_rules: list[Any]) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        max_iterations=20,
        em_convergence=0.001,
    )


@dataclass
class ModelReport:
    records: int = 0
    blocking: list[dict[str, Any]] = field(default_factory=list)  # rule, comparisons, kept
    comparisons: int = 0
    predicted_links: int = 0
    probability_two_random_records_match: float | None = None


def choose_blocking_rules(linker: Linker, n_records: int,
                          report: ModelReport) -> list[Any]:
    """Keep each candidate rule whose added comparisons stay within budget (counts logged).

    One blocking analysis counts every candidate's marginal comparisons; a rule over budget is
    dropped and the rest recounted without it (its pairs may fall to later rules)."""
    budget = max(MIN_RULE_BUDGET, RULE_BUDGET_PER_RECORD * n_records)
    sample = 1.0 if n_records <= EXACT_COUNT_RECORDS else 0.2
    candidates = list(CANDIDATE_BLOCKING_RULES)
    dropped: dict[str, int] = {}
    while True:
        with warnings.catch_warnings():  # sampled counts of tiny rules warn; they are tiny
            warnings.simplefilter("ignore", UserWarning)
            counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(
                [rule for _, rule in candidates], record_sample_proportion=sample)
        added = [int(c["marginal_comparison_count"]) for c in counts]
        over = next((i for i, n in enumerate(added) if n > budget), None)
        if over is None:
            break
        name, _ = candidates.pop(over)
        dropped[name] = added[over]
    kept_names = {name for name, _ in candidates}
    for name, _ in CANDIDATE_BLOCKING_RULES:
        n = added[[c[0] for c in candidates].index(name)] if name in kept_names else dropped[name]
        report.blocking.append({"rule": name, "added_comparisons": n, "kept": name in kept_names})
        logger.info("blocking rule %s adds %s comparisons (%s)", name, f"{n:,}",
                    "kept" if name in kept_names else f"dropped: over budget {budget:,}")
    return [rule for _, rule in candidates]


def train(engine: Engine, input_table: str, artefacts: Path) -> tuple[Linker | None, ModelReport]:
    """Choose blocking rules, train the model on `input_table` (prior from deterministic rules,
    u by random sampling, m by EM) and save it with its charts. No linker when there are fewer
    than two records."""
    report = ModelReport(records=int(engine.scalar(f'select count(*) from "{input_table}"')))
    if report.records < 2:
        return None, report
    db_api = engine.splink_db_api()
    sdf = db_api.register(input_table)
    linker = Linker(sdf, settings_creator([]), log_level=logging.ERROR)
    rules = choose_blocking_rules(linker, report.records, report)
    # u from random pairs: a tenth of all pairs on small data, at most U_SAMPLE_PAIRS
    all_pairs = report.records * (report.records - 1) // 2
    u_settings = estimate_u(engine, input_table, rules,
                            min(U_SAMPLE_PAIRS, max(MIN_U_SAMPLE_PAIRS, all_pairs // 10)),
                            report.records)
    linker = Linker(sdf, u_settings, log_level=logging.ERROR)
    report.comparisons = sum(b["added_comparisons"] for b in report.blocking if b["kept"])
    default_prior = linker._settings_obj._probability_two_random_records_match
    try:
        linker.training.estimate_probability_two_random_records_match(
            [block_on("email"), block_on("phone"),
             block_on("first_name", "last_name", "birth_date")], recall=0.7)
    except ValueError as exc:  # too few records for the estimate: keep Splink's default prior
        logger.info("prior not estimated: %s", exc)
    if not linker._settings_obj._probability_two_random_records_match:
        # No deterministic match at all (tiny or all-distinct data): a prior of 0 would mean
        # "nothing can match" and breaks Splink's weights (1 / prior); keep the default.
        logger.info("prior not estimated: the deterministic rules found no match")
        linker._settings_obj._probability_two_random_records_match = default_prior
    report.probability_two_random_records_match = (
        linker._settings_obj._probability_two_random_records_match)
    # EM needs pairs to learn from; on small data a rule may produce (almost) none.
    for rule, n_pairs in zip(TRAINING_RULES,
                             training_pairs(engine, input_table, linker, report.records),
                             strict=True):
        if n_pairs < MIN_EM_PAIRS:
            logger.info("EM session skipped: too few pairs")
            continue
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True,
            max_pairs=EM_MAX_PAIRS if n_pairs > EM_MAX_PAIRS else None)
    save_model(linker, artefacts)
    return linker, report


def training_pairs(engine: Engine, input_table: str, linker: Linker,
                   n_records: int) -> list[int]:
    """Pairs each EM training rule blocks (record pairs agreeing on all of its columns, none
    null). Up to EXACT_COUNT_RECORDS records they are counted exactly, all rules in one query
    (per rule: the sum of n(n-1)/2 over its groups of equal values), which is what Splink's
    blocking analysis of the rule alone counts, but without one analysis (on Spark: a query
    planned and run, and its jobs) per rule. Above, Splink's sampled estimate is kept."""
    if n_records > EXACT_COUNT_RECORDS:
        counts = []
        for rule in TRAINING_RULES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                found = linker.blocking_analysis.count_comparisons_from_blocking_rules(
                    [rule], record_sample_proportion=0.2)[-1]
            counts.append(int(found["marginal_comparison_count"]))
        return counts
    parts = []
    for i, columns in enumerate(TRAINING_RULE_COLUMNS):
        keys = ", ".join(f'"{c}"' for c in columns)
        not_null = " and ".join(f'"{c}" is not null' for c in columns)
        # n(n-1) is even: the halving is exact
        parts.append(f"""
            select {i} as rule, cast(coalesce(sum(n * (n - 1)), 0) / 2 as bigint) as pairs
            from (select count(*) as n from "{input_table}" where {not_null}
                  group by {keys}) as g""")
    found = engine.to_arrow(" union all ".join(parts)).to_pydict()
    by_rule = dict(zip(found["rule"], found["pairs"], strict=True))
    return [int(by_rule[i]) for i in range(len(TRAINING_RULE_COLUMNS))]


U_SAMPLE_TABLE = "splink_u_sample"
U_SAMPLE_SALT = "u-sample-42"


def estimate_u(engine: Engine, input_table: str, rules: list[Any],
               max_pairs: int, records: int) -> dict[str, Any]:
    """Settings (with trained u) from every pair of a sample of the records of `input_table`
    (`records`: its row count).

    The sample is the records with the smallest md5 of their key (salted), enough of them for
    about `max_pairs` pairs, and u comes from all of its pairs in one pass. Splink's own sampler
    would pick records and chunks by each backend's hash function (and stop early by chunk), so
    DuckDB and Spark would train on different pairs; md5 is the same everywhere, so both engines
    estimate the same u from the same pairs."""
    rows = min(records, math.ceil(0.5 * (math.sqrt(8 * max_pairs + 1) + 1)))
    engine.create_table(U_SAMPLE_TABLE, f"""
        select * from "{input_table}"
        order by md5(concat(cast(unique_id as varchar), ?)), unique_id
        limit {int(rows)}""", [U_SAMPLE_SALT])
    # a database API of its own: Splink caches tables by name per API, and this linker's
    # tables describe the sample, not the input
    u_linker = Linker(engine.splink_db_api().register(U_SAMPLE_TABLE),
                      settings_creator(rules), log_level=logging.ERROR)
    _estimate_u_in_one_pass(u_linker)
    settings = u_linker.misc.save_model_to_json()
    engine.drop_table(U_SAMPLE_TABLE)
    return settings


def _estimate_u_in_one_pass(linker: Linker) -> None:
    """u of every comparison from every pair of the linker's (sample) table, in one query.

    What Splink's `estimate_u_using_random_sampling` computes when it samples nothing (every
    pair, one chunk), with its SQL and its arithmetic, but in one pass: Splink builds the pairs
    and comparison vectors once per comparison (six queries; on Spark six jobs over the same
    million pairs, each planned anew, and another job per comparison for the proportions).
    Here one query counts the pairs per agreement pattern, and Splink's u counts and
    proportions are computed from those counts by DuckDB on the driver (a few thousand rows
    at most, whatever the data size), as Splink itself computes the proportions on every
    backend."""
    from copy import deepcopy

    import duckdb
    import pyarrow as pa
    from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT
    from splink.internals.estimate_u import _estimate_u_comparison_vector_sqls
    from splink.internals.expectation_maximisation import (
        compute_new_parameters_sql,
        compute_proportions_for_new_parameters_sql,
    )
    from splink.internals.m_u_records_to_parameters import (
        append_u_probability_to_comparison_level_trained_probabilities,
        m_u_records_to_lookup_dict,
    )
    from splink.internals.misc import dedupe_preserving_order
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.settings import Settings
    from splink.internals.vertically_concatenate import enqueue_df_concat

    original = linker._settings_obj
    # u is estimated without term-frequency adjustments (as Splink does, on a copy)
    settings = deepcopy(original)
    for comparison in settings.comparisons:
        for level in comparison.comparison_levels:
            level._tf_adjustment_column = None
    info = settings.column_info_settings
    uid_columns = info.unique_id_input_columns
    blocking_cols = [c for uid in uid_columns for c in uid.l_r_names_as_l_r]
    for comparison in settings.comparisons:
        blocking_cols += comparison._columns_to_select_for_blocking()
    cv_cols = Settings.columns_to_select_for_comparison_vector_values(
        unique_id_input_columns=uid_columns, comparisons=settings.comparisons,
        retain_matching_columns=False, additional_columns_to_retain=[])

    pipeline = enqueue_df_concat(linker, CTEPipeline())
    pipeline.enqueue_list_of_sqls(_estimate_u_comparison_vector_sqls(
        db_api=linker._db_api, input_tablename_l="__splink__df_concat",
        input_tablename_r="__splink__df_concat", link_type=settings._link_type,
        source_dataset_input_column=info.source_dataset_input_column,
        unique_id_input_column=info.unique_id_input_column,
        blocking_cols=dedupe_preserving_order(blocking_cols), cv_cols=cv_cols,
        rhs_chunk_num=1, rhs_num_chunks=1))
    # the pairs counted per agreement pattern (one row per combination of levels: a few
    # thousand at most, whatever the data size), so the pairs and their comparisons are built
    # once: Spark would build them again for each comparison's branch of Splink's count query
    gammas = ", ".join(c._gamma_column_name for c in settings.comparisons)
    pipeline.enqueue_sql(f"""
        select {gammas}, count(*) as agreement_pattern_count
        from __splink__df_comparison_vectors group by {gammas}""", "__splink__u_patterns")
    patterns_df = linker._db_api.sql_pipeline_to_splink_dataframe(pipeline)
    try:
        patterns = patterns_df.as_pyarrow_table()
    finally:
        patterns_df.drop_table_from_database_and_remove_from_cache()

    con = duckdb.connect()
    try:
        # Splink's u counts over those patterns (each pattern weighted by its pairs: the same
        # integer sums as over the pairs one by one), then its proportions
        con.register("patterns", patterns)
        con.execute("""create view __splink__df_predict as
                       select *, cast(0.0 as double) as match_probability from patterns""")
        found = con.sql(compute_new_parameters_sql(
            estimate_without_term_frequencies=True,
            comparisons=settings.comparisons)).to_arrow_table().to_pylist()
        # every non-null level, with 0 pairs when none was seen (Splink's accumulator does so)
        u_counts = {(c.output_column_name, int(level.comparison_vector_value)): 0.0
                    for c in settings.comparisons
                    for level in c._comparison_levels_excluding_null}
        for row in found:
            key = (row["output_column_name"], int(row["comparison_vector_value"]))
            if key in u_counts:
                u_counts[key] += float(row["u_count"])
        names, values = zip(*sorted(u_counts.items()), strict=True) if u_counts else ((), ())
        con.register("m_u_df", pa.table({
            "comparison_vector_value": [v for _, v in names],
            "output_column_name": [n for n, _ in names],
            "u_count": list(values), "m_count": [0.0] * len(values)}))
        params = con.sql(compute_proportions_for_new_parameters_sql("m_u_df")).to_arrow_table()
    finally:
        con.close()
    param_records = params.to_pylist()
    for record in param_records:
        # a level no pair reached is "not observed", not u = 0 (as Splink reports it)
        key = (record["output_column_name"], int(record["comparison_vector_value"]))
        if u_counts.get(key, 0.0) == 0.0:
            record["u_probability"] = LEVEL_NOT_OBSERVED_TEXT
    lookup = m_u_records_to_lookup_dict(param_records)
    for comparison in original.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            append_u_probability_to_comparison_level_trained_probabilities(
                level, lookup, comparison.output_column_name,
                "estimate u by random sampling")
    linker._populate_m_u_from_trained_values()


def predict(engine: Engine, linker: Linker, threshold: float, report: ModelReport) -> str:
    """Working table `splink_links`: scored pairs with match probability >= `threshold`."""
    predictions = linker.inference.predict(threshold_match_probability=threshold,
                                           warning_mode="never")
    engine.create_table("splink_links", f"""
        select unique_id_l as record_l, unique_id_r as record_r,
               match_weight, match_probability
        from {predictions.physical_name}""")
    predictions.drop_table_from_database_and_remove_from_cache()
    report.predicted_links = int(engine.scalar("select count(*) from splink_links"))
    return "splink_links"


MODEL_FILE = "splink_model.json"


def save_model(linker: Linker, artefacts: Path) -> None:
    """The trained model (JSON) and its charts (HTML) in the artefacts directory."""
    model = linker.misc.save_model_to_json()
    write_text_atomic(artefacts / MODEL_FILE, json.dumps(model, indent=2))
    write_text_atomic(artefacts / "match_weights.html",
                      linker.visualisations.match_weights_chart().to_html(inline=True))
    write_text_atomic(artefacts / "m_u_parameters.html",
                      linker.visualisations.m_u_parameters_chart().to_html(inline=True))
