"""The dbt warehouse, scheduled on the `identity` asset (`cdp_warehouse`).

dbt (through astronomer-cosmos, one `dbt build` task per model: the model, then its tests)
-> mart gates -> publish one `segment_<name>` Asset per segment of the registry.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from cdp_dags import assets, common, dbt_project, gates

from cdp.config import Settings

DOC = """
### Warehouse (dbt)

**Purpose**: build the customer 360, KPIs and the segment tables marketers query, then
release the segments to activation once the mart gates pass.

**Owner**: {owner}  |  **Schedule**: Asset `identity` (new customers and golden profiles)

**Inputs**: the raw lake (dbt reads it in place) and the `identity` schema of the warehouse.

**Steps**: task group `dbt`: one task per dbt model, rendered by astronomer-cosmos from the
dbt manifest (`{manifest}`); each runs `dbt build` on its model, i.e. the model and then its
data and unit tests, so a failing test stops everything downstream of that model. Tests that
read two sibling models run in `cross_model_tests` after the group. Then `mart_gates`
(Great Expectations), then `publish_segments`.

**Outputs**: the marts in the `{target}` warehouse; Assets `segment_<name>` for the
{count} segments of the registry ({segments}), published with their member counts after the
gates pass; they schedule `cdp_activation`. Cosmos also emits an Asset per dbt model.

**Marts gate**: a segment whose size jumps beyond its band (or a consent breach) fails the
gate, so no segment asset is published and nothing is activated. After checking, trigger this
DAG with `confirm_segment_sizes: true` to accept the new sizes (consent failures are never
accepted).

**Re-render**: after changing the dbt project, run `dbt parse` again (see dags/README.md).
"""


def build_dag(settings: Settings) -> Any:
    segment_assets = assets.segment_assets(settings)
    doc = DOC.format(
        owner=common.OWNER, manifest=dbt_project.manifest_path(settings),
        target=settings.warehouse.target, count=len(segment_assets),
        segments=", ".join(a.name for a in segment_assets),
    )

    @dag(
        dag_id="cdp_warehouse",
        description="dbt build of the warehouse (customer 360, segments), then mart gates",
        schedule=assets.identity_asset(settings),
        max_active_runs=1,
        params={"confirm_segment_sizes": Param(
            False, type="boolean",
            description="Accept segment sizes that moved beyond their band (a person checked)")},
        **common.dag_kwargs(doc, tags=["warehouse", "dbt"], deadline_hours=2),
    )
    def cdp_warehouse() -> None:
        # DuckDB takes one writer at a time: model tasks share the warehouse pool's slot.
        dbt = dbt_project.dbt_task_group(settings, group_id="dbt", pool=common.WAREHOUSE_POOL)

        @task
        def mart_gates() -> dict[str, Any]:
            """The marts gate; a manual run with `confirm_segment_sizes` accepts new sizes."""
            confirm = bool(get_current_context()["params"].get("confirm_segment_sizes"))
            return gates.run_gate("marts", **({"confirm": True} if confirm else {}))

        @task(outlets=segment_assets, pool=common.WAREHOUSE_POOL)
        def publish_segments() -> dict[str, int]:
            """Announce every segment of the registry, with its member count as event extra."""
            counts = segment_sizes(common.settings())
            events = get_current_context()["outlet_events"]
            for asset in segment_assets:
                segment = assets.segment_of(asset.name)
                events[asset].extra = {"members": counts.get(segment, 0)}
            return counts

        gate = mart_gates()
        cross = dbt_project.cross_model_tests(settings, pool=common.WAREHOUSE_POOL)
        if cross is not None:
            dbt >> cross >> gate
        else:
            dbt >> gate
        gate >> publish_segments()

    return cdp_warehouse()


def segment_sizes(settings: Settings) -> dict[str, int]:
    """Members per segment in `segment_membership` (DuckDB warehouse; empty elsewhere)."""
    if settings.warehouse.target != "duckdb":
        return {}
    from cdp.warehouse import connect

    # Not read-only: a process that already holds the file (dbt-duckdb in `dag.test()`) cannot
    # open it again with another configuration; the pool keeps writers apart anyway.
    con = connect(settings)
    try:
        rows = con.execute(
            f"select segment, count(*) from {assets.MARTS_SCHEMA}.segment_membership "
            "group by segment").fetchall()
    finally:
        con.close()
    return {str(segment): int(members) for segment, members in rows}


cdp_warehouse_dag = build_dag(common.settings())
