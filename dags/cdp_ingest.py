"""Ingestion: one DAG per channel declared in cdp.yaml (`cdp_ingest_<channel>`).

A new channel in the config is a new DAG on the next parse, with no code. Each DAG runs on
its channel's `schedule`, calls `cdp.ingest.ingest(settings, channels=[channel])` (what
`cdp ingest --channel <channel>` runs) and publishes the Asset `raw_<channel>` when new
rows reached the raw lake.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from cdp_dags import assets, common, sources

from cdp.config import Settings

DOC = """
### Ingest channel `{name}`

**Purpose**: load every new landing file of the `{name}` channel into the raw lake, losing
nothing: accepted rows to `raw/{name}/`, rejected rows to `quarantine/{name}/` with a reason,
one load-log entry per file. Re-runs are safe (files are loaded once, by content).

{description}

**Owner**: {owner}  |  **Schedule**: `{schedule}` (the channel's `schedule` in cdp.yaml)

**Inputs**: landing files `{landing}/{path}` ({format}). When the Airflow Variable
`cdp_source_{name}` names a remote folder, new files are first pulled from it with the
Airflow connection it names (see `dags/cdp_dags/sources.py`); otherwise the channel is a file
drop and the landing folder is ingested as delivered.

**Outputs**: Asset `raw_{name}` (`{uri}`), only when new rows were loaded; it schedules
`cdp_identity`. XCom: the ingest figures (files and rows received / loaded / quarantined).

**Failure**: a file that fails as a whole (empty, unreadable, schema drift) fails the task
with the file and rule named; other files are still loaded. Retries back off exponentially
(pulls touch the network).
"""


def ingest_dag(settings: Settings, name: str) -> Any:
    """The ingestion DAG of one channel."""
    channel = settings.channel(name)
    raw = assets.raw_asset(settings, name)
    doc = DOC.format(
        name=name, description=channel.description, owner=common.OWNER,
        schedule=channel.schedule, landing=settings.resolved_paths.landing, path=channel.path,
        format=channel.format, uri=raw.uri,
    )

    @dag(
        dag_id=f"cdp_ingest_{name}",
        description=f"Ingest {name}: landing -> raw lake + quarantine",
        schedule=channel.schedule,
        max_active_runs=1,
        **common.dag_kwargs(doc, tags=["ingest", f"channel:{name}"], deadline_hours=1),
    )
    def ingest_channel() -> None:
        @task(**common.NETWORK_RETRIES)
        def ingest() -> dict[str, Any]:
            """Pull new files (when the channel has a remote source), then `cdp ingest`."""
            from cdp.ingest import ingest as run_ingest

            current = common.settings()
            pulled = sources.pull(current, current.channel(name))
            figures = common.run_step(lambda: run_ingest(current, channels=[name]))
            return {"pull": pulled, **figures}

        @task(outlets=[raw])
        def publish(figures: dict[str, Any]) -> dict[str, Any]:
            """Announce new raw data (the Asset event), or skip when nothing new was loaded."""
            loaded = int(figures.get("rows_loaded") or 0)
            if not figures.get("files_loaded"):
                raise AirflowSkipException(f"no new file for {name}: nothing to publish")
            get_current_context()["outlet_events"][raw].extra = {
                "files_loaded": int(figures["files_loaded"]),
                "rows_loaded": loaded,
                "rows_quarantined": int(figures.get("rows_quarantined") or 0),
            }
            return {"rows_loaded": loaded}

        publish(ingest())

    return ingest_channel()


_settings = common.settings()
for _name in _settings.channels:
    globals()[f"cdp_ingest_{_name}"] = ingest_dag(_settings, _name)
