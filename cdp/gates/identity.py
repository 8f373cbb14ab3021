"""The identity gate: after `cdp resolve`, before dbt builds on its tables.

Three suites, each on its own frame (cdp/gates/warehouse_frames.py): `identity.records` (every
ingested record maps to exactly one customer), `identity.customers` (over-merge alarms,
cluster-size distribution, singleton share) and `identity.golden_profiles` (no empty key fields).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates import warehouse_frames as frames
from cdp.gates.context import GateContext
from cdp.gates.report import SuiteOutcome, outcome_from
from cdp.gates.suites import load_suites


def run_identity(settings: Settings, ctx: GateContext
                 ) -> tuple[list[SuiteOutcome], list[str], dict[str, Any], list[str]]:
    """Validate the identity tables; returns outcomes, notes, figures, extra message lines."""
    suites = load_suites(settings, "identity")
    con = frames.open_warehouse(settings)
    try:
        schema = frames.identity_schema(con)
        records, declared_unresolved = frames.records_frame(con, settings, schema)
        data: dict[str, pd.DataFrame] = {
            "records": records,
            "customers": frames.customers_frame(con, schema),
            "golden_profiles": frames.golden_frame(con, schema),
        }
    finally:
        con.close()
    total = len(records)
    # The share of rows that must map to one customer: all but those resolve declared
    # unresolved. Computed exactly as GX computes the success ratio, so equality passes.
    mapped_share_min = (float(total) - float(declared_unresolved)) / float(total) if total else 1.0
    params = {"mapped_share_min": max(0.0, mapped_share_min)}
    outcomes = []
    for suite in suites:
        if suite.frame not in data:
            raise CdpError(f"suite {suite.name}: unknown frame '{suite.frame}' in meta.cdp.frame;"
                           f" use one of {', '.join(data)}")
        result = ctx.validate(suite, data[suite.frame], params, run_name="identity")
        outcomes.append(outcome_from(result, suite.name, f"{schema} schema"))
    customers = data["customers"]
    figures = {
        "source_records": total,
        "declared_unresolved_rows": declared_unresolved,
        "customers": len(customers),
        "largest_cluster_records": int(customers["identity_records"].max()) if len(customers)
        else 0,
        "singleton_share": round(float(customers["singleton"].mean()), 4) if len(customers)
        else None,
    }
    notes = [f"{total} ingested source records, {declared_unresolved} declared unresolved by "
             f"resolve; {figures['customers']} customers, singleton share "
             f"{figures['singleton_share']}"]
    return outcomes, notes, figures, []

