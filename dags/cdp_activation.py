"""Activation (reverse ETL), scheduled on the segment assets (`cdp_activation`).

`plan` lists the (segment, destination) pairs to sync; `sync` is mapped over them, one task
instance per pair, each calling `cdp.activation.sync(settings, segments=[segment],
destinations=[destination])` (what `cdp sync --segment s --destination d` runs).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from cdp_dags import assets, common, gates, secrets

from cdp.config import Settings

DOC = """
### Activation (reverse ETL)

**Purpose**: push segment membership to the destinations configured under `activation:` in
cdp.yaml (ad platforms, webhooks, files, Postgres) as add / remove diffs, with hashing and
consent and erasure filtering.

**Owner**: {owner}  |  **Schedule**: any of the segment assets (`|`) published by
`cdp_warehouse` after its gates

**Inputs**: `segment_membership` and golden profiles in the warehouse; the sync state of the
`activation` schema; destination secrets from Airflow (Variables named after each
destination's `*_env` settings; connection `<dsn_env lowercased>` for Postgres DSNs; see
`dags/cdp_dags/secrets.py`).

**Steps**: `activation_gate` (the last marts gate must have passed or been confirmed) ->
`plan` -> `sync` mapped over (segment, destination) pairs (map index shows
`segment -> destination`). A scheduled run syncs the segments whose assets triggered it; a
manual run syncs every segment. Params: `full` (resend everything, still removing leavers),
`dry_run` (counts and hashed samples only).

**Outputs**: destination audiences / tables / files; the sync log and state in the
warehouse's `activation` schema. XCom per pair: adds, removes, accepted, rejected, match
share.

**Retries**: syncs call remote APIs: exponential backoff between tries (the library also
retries each request, honouring Retry-After); a batch that still fails is kept and resent by
the next run, never lost.
"""


def plan_pairs(settings: Settings, segments: list[str] | None) -> list[dict[str, str]]:
    """(segment, destination) pairs: each destination's segments (its `segments`, else those
    mapped to an audience, else the whole registry), limited to `segments` when given."""
    from cdp.activation.config import load_activation_config

    registry = assets.segment_names(settings)
    pairs: list[dict[str, str]] = []
    for name, destination in load_activation_config(settings).destinations.items():
        chosen = destination.segments or destination.mapped_segments() or registry
        pairs += [{"segment": segment, "destination": name} for segment in chosen
                  if segments is None or segment in segments]
    return pairs


def build_dag(settings: Settings) -> Any:
    doc = DOC.format(owner=common.OWNER)

    @dag(
        dag_id="cdp_activation",
        description="Reverse ETL: segment membership -> destinations, one task per pair",
        schedule=assets.any_of(assets.segment_assets(settings)),
        max_active_runs=1,
        params={
            "full": Param(False, type="boolean", description="Resend every eligible member"),
            "dry_run": Param(False, type="boolean", description="Plan only: send nothing"),
        },
        **common.dag_kwargs(doc, tags=["activation", "reverse-etl"], deadline_hours=1),
    )
    def cdp_activation() -> None:
        @task
        def plan() -> list[dict[str, str]]:
            """Pairs for the segments that triggered this run (every segment when manual)."""
            events = get_current_context().get("triggering_asset_events") or {}
            triggered = sorted({segment for asset in events
                                if (segment := assets.segment_of(asset.name))})
            return plan_pairs(common.settings(), triggered or None)

        @task(pool=common.WAREHOUSE_POOL, map_index_template="{{ pair }}",
              **common.NETWORK_RETRIES)
        def sync(segment: str, destination: str) -> dict[str, Any]:
            from cdp.activation import sync as run_sync

            context = get_current_context()
            context["pair"] = f"{segment} -> {destination}"  # type: ignore[typeddict-unknown-key]
            params = context["params"]
            current = common.settings()
            with secrets.destination_secrets(current, destination):
                figures = common.run_step(lambda: run_sync(
                    current, segments=[segment], destinations=[destination],
                    full=bool(params.get("full")), dry_run=bool(params.get("dry_run"))))
            # Dry-run samples (hashed identifiers) go to the task log, not to XCom.
            for pair in figures.get("pairs", []):
                pair.pop("sample", None)
            return figures

        @task
        def activation_gate() -> dict[str, Any]:
            """Refuse to sync unless the last marts gate passed (matters for manual runs)."""
            return gates.activation_allowed()

        pairs = plan()
        activation_gate() >> pairs
        sync.expand_kwargs(pairs)

    return cdp_activation()


cdp_activation_dag = build_dag(common.settings())
