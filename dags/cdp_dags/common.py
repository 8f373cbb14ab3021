"""What every CDP DAG shares: settings, owner and defaults, and the one way a task runs a step.

DAG tasks call the same library functions as the `cdp` CLI (see cdp/cli.py); `run_step` turns
the `StepSummary` they return into task logs, an XCom value (its figures) and, when the step did
not succeed, a failed task.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum

from cdp.config import CONFIG_ENV, Settings, load_settings
from cdp.errors import CdpError
from cdp.summary import StepSummary

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
OWNER = "cdp-data-engineering"
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
# Every task that writes the DuckDB warehouse takes the one slot of this pool: DuckDB allows a
# single writing process per file. Create it once: `airflow pools set cdp_warehouse 1 "..."`.
WAREHOUSE_POOL = "cdp_warehouse"

# Tasks that touch the network (pulls, ad-platform syncs): retry after ~30 s, 1 min, 2 min, 4 min.
NETWORK_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
}


class StepFailed(CdpError):
    """A library step returned a summary with ok=False."""


def settings() -> Settings:
    """The platform configuration: `$CDP_CONFIG` (set by the deployment), else the repo's cdp.yaml.

    Environment overrides (CDP_ENGINE, CDP__...) apply as for the CLI.
    """
    return load_settings(os.environ.get(CONFIG_ENV) or REPO_ROOT / "cdp.yaml")


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults: a named owner, one retry, and the failure alert."""
    from cdp_dags import alerts

    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": alerts.task_failed,
    }
    args.update(overrides)
    return args


def dag_kwargs(doc_md: str, tags: list[str], deadline_hours: float) -> dict[str, Any]:
    """Arguments every CDP DAG gets: docs, tags, UTC start, no catch-up, alerts, a deadline."""
    from cdp_dags import alerts

    return {
        "doc_md": doc_md,
        "tags": ["cdp", *tags],
        "start_date": START_DATE,
        "catchup": False,
        "default_args": default_args(),
        "on_failure_callback": alerts.dag_failed,
        "deadline": alerts.deadline(timedelta(hours=deadline_hours)),
    }


def run_step(step: Callable[[], StepSummary]) -> dict[str, Any]:
    """Run a library step, log its summary, fail the task unless it succeeded.

    Returns the summary's figures (JSON-safe) so they land in XCom. Summaries and CdpError
    messages carry no PII by contract, so they are safe to log.
    """
    try:
        summary = step()
    except CdpError as exc:
        if partial := getattr(exc, "summary", None):
            log_summary(partial)
        raise
    log_summary(summary)
    if not summary.ok:
        raise StepFailed(f"{summary.title} did not succeed; see its summary in the log above")
    return jsonable(summary.figures)


def log_summary(summary: StepSummary) -> None:
    log.info("%s%s", summary.title, "" if summary.ok else " (NOT OK)")
    for label, value in summary.rows:
        log.info("  %s: %s", label, value)
    for note in summary.notes:
        log.info("  %s", note)


def jsonable(value: Any) -> Any:
    """Figures as plain JSON types (paths, dates and numpy numbers become strings / numbers)."""
    return json.loads(json.dumps(value, default=str))
