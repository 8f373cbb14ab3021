"""`evaluate(settings, truth_path)`: how well the clustering matches a ground-truth file.

Exact pairwise precision / recall / F1 without enumerating pairs: with n_ij the number of records
in predicted cluster i and true entity j,

    true positives  = sum_ij C(n_ij, 2)
    predicted pairs = sum_i  C(n_i., 2)      true pairs = sum_j C(n_.j, 2)

and B-cubed precision / recall (per record: share of its predicted cluster that is its entity,
share of its entity that is in its cluster, averaged over records):

    P_b3 = sum_ij n_ij^2 / n_i. / N          R_b3 = sum_ij n_ij^2 / n_.j / N

Only records in the truth file are scored. A truth record the resolver left without a customer
(unresolved, or never ingested) counts as a singleton cluster of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary
from identity.store import artefacts_dir, open_identity, write_text_atomic

TRUTH_COLUMNS = ("source", "source_record_id", "entity_id")


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def contingency_metrics(con: duckdb.DuckDBPyConnection, assignments: str) -> dict[str, float]:
    """Metrics from a relation `assignments(cluster, entity)` with one row per scored record."""
    row = con.execute(f"""
        with cells as (select cluster, entity, count(*) as n from {assignments} group by all),
             clusters as (select cluster, sum(n) as n from cells group by cluster),
             entities as (select entity, sum(n) as n from cells group by entity)
        select
          (select sum(n) from cells),
          (select coalesce(sum(cast(n as hugeint) * (n - 1) // 2), 0) from cells),
          (select coalesce(sum(cast(n as hugeint) * (n - 1) // 2), 0) from clusters),
          (select coalesce(sum(cast(n as hugeint) * (n - 1) // 2), 0) from entities),
          (select sum(c.n * c.n / k.n) from cells c join clusters k using (cluster)),
          (select sum(c.n * c.n / e.n) from cells c join entities e using (entity)),
          (select count(*) from clusters), (select count(*) from entities)
    """).fetchall()[0]
    n, tp, pred_pairs, true_pairs, b3p, b3r, n_clusters, n_entities = row
    n = int(n or 0)
    tp, pred_pairs, true_pairs = int(tp), int(pred_pairs), int(true_pairs)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    bcubed_p = float(b3p) / n if n else 1.0
    bcubed_r = float(b3r) / n if n else 1.0
    return {
        "records": n, "true_positive_pairs": tp, "predicted_pairs": pred_pairs,
        "true_pairs": true_pairs, "precision": precision, "recall": recall,
        "f1": _f1(precision, recall), "bcubed_precision": bcubed_p, "bcubed_recall": bcubed_r,
        "bcubed_f1": _f1(bcubed_p, bcubed_r), "predicted_clusters": int(n_clusters),
        "true_entities": int(n_entities),
    }


def _truth_relation(con: duckdb.DuckDBPyConnection, truth_path: Path) -> None:
    suffix = truth_path.suffix.lower()
    if suffix == ".parquet":
        rel = con.read_parquet(str(truth_path))
    elif suffix in {".csv", ".txt", ".gz"}:
        rel = con.read_csv(str(truth_path), header=True, all_varchar=True)
    else:
        raise CdpError(f"truth file {truth_path}: expected .csv or .parquet")
    missing = [c for c in TRUTH_COLUMNS if c not in rel.columns]
    if missing:
        raise CdpError(f"truth file {truth_path} lacks column(s) {', '.join(missing)}; "
                       f"expected {', '.join(TRUTH_COLUMNS)}")
    rel.create_view("truth_raw")
    con.execute("""
        create temp table truth as
        select distinct cast(source as varchar) as source,
               cast(source_record_id as varchar) as source_record_id,
               cast(entity_id as varchar) as entity_id
        from truth_raw""")
    dupes = con.execute("""
        select count(*) from (select source, source_record_id from truth
                              group by all having count(*) > 1)""").fetchall()[0][0]
    if dupes:
        raise CdpError(f"truth file {truth_path}: {dupes} record(s) have more than one entity_id")
    nulls = con.execute("select count(*) from truth where source is null or "
                        "source_record_id is null or entity_id is null").fetchall()[0][0]
    if nulls:
        raise CdpError(f"truth file {truth_path}: {nulls} row(s) with an empty "
                       "source, source_record_id or entity_id")


def evaluate(settings: Settings, truth_path: Path | str) -> StepSummary:
    """Pairwise and B-cubed precision/recall/F1 of the current clustering against a truth file
    (columns source, source_record_id, entity_id; CSV or Parquet). Figures are also written to
    `{artefacts}/identity/evaluation.json`."""
    truth_path = Path(truth_path)
    if not truth_path.is_file():
        raise CdpError(f"truth file {truth_path} does not exist")
    warehouse = open_identity(settings)
    con = duckdb.connect()
    try:
        _truth_relation(con, truth_path)
        clusters = warehouse.sql(
            "select source, source_record_id, customer_id from identity.identity_clusters"
        ).to_arrow_table()
        con.register("clusters", clusters)
        con.execute("""
            create temp table assignments as
            select coalesce(c.customer_id, 'unresolved:' || t.source || ':' || t.source_record_id)
                     as cluster,
                   t.entity_id as entity, c.customer_id is null as unresolved
            from truth t
            left join clusters c on c.source = t.source
                                and c.source_record_id = t.source_record_id""")
        figures = contingency_metrics(con, "assignments")
        figures["truth_records_without_customer"] = int(con.execute(
            "select count(*) from assignments where unresolved").fetchall()[0][0])
        figures["resolved_records_not_in_truth"] = int(con.execute("""
            select count(*) from clusters c anti join truth t
              on c.source = t.source and c.source_record_id = t.source_record_id
        """).fetchall()[0][0])
    finally:
        con.close()
        warehouse.close()
    figures["truth_file"] = str(truth_path)
    write_text_atomic(artefacts_dir(settings) / "evaluation.json", json.dumps(figures, indent=2))
    summary = StepSummary(title="evaluate", figures=figures)
    summary.add("records scored", figures["records"])
    summary.add("pairwise precision", f"{figures['precision']:.4f}")
    summary.add("pairwise recall", f"{figures['recall']:.4f}")
    summary.add("pairwise F1", f"{figures['f1']:.4f}")
    summary.add("B-cubed precision", f"{figures['bcubed_precision']:.4f}")
    summary.add("B-cubed recall", f"{figures['bcubed_recall']:.4f}")
    summary.add("B-cubed F1", f"{figures['bcubed_f1']:.4f}")
    summary.add("customers (predicted clusters)", figures["predicted_clusters"])
    summary.add("people (true entities)", figures["true_entities"])
    summary.add("truth records without a customer", figures["truth_records_without_customer"])
    return summary
