"""Demo data (`cdp_demo_generate`): realistic omnichannel landing files, manual trigger only."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from cdp_dags import common

DOC = f"""
### Demo data generator

**Purpose**: fill the landing area with realistic, generated omnichannel customer data (the
`cdp generate` step) so the whole chain can be tried in a local Airflow. Never schedule it in
production: it is manual-only (`schedule=None`).

**Owner**: {common.OWNER}  |  **Schedule**: none (trigger by hand; params `people`, `seed`)

**Inputs**: nothing but the params.

**Outputs**: landing files for every channel and a ground-truth file (read by no pipeline
step). The ingestion DAGs `cdp_ingest_<channel>` load them on their next run (trigger them to
go at once); the chain then runs by itself through the assets.
"""


@dag(
    dag_id="cdp_demo_generate",
    description="Demo only: generate omnichannel landing files with ground truth",
    schedule=None,
    params={
        "people": Param(2000, type="integer", minimum=1, description="People to simulate"),
        "seed": Param(42, type="integer", description="Random seed (same seed, same data)"),
    },
    **common.dag_kwargs(DOC, tags=["demo"], deadline_hours=1),
)
def cdp_demo_generate() -> None:
    @task
    def generate() -> dict[str, Any]:
        """`cdp.generate.generate(settings, people, seed)`, as `cdp generate` runs it."""
        from cdp.generate import generate as run_generate

        params = get_current_context()["params"]
        current = common.settings()
        return common.run_step(lambda: run_generate(
            current, people=int(params["people"]), seed=int(params["seed"])))

    generate()


cdp_demo_generate_dag = cdp_demo_generate()
