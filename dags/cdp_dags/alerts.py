"""Alerts: failed tasks, failed DAG runs and missed deadlines (Airflow 3 replaced SLAs with
deadline alerts).

Every alert is logged at error level. When the Airflow connection `cdp_alerts` exists, the
alert is also POSTed to it as JSON (Slack/Teams/PagerDuty webhook or any HTTP endpoint):
its `host` holds the full URL (`https://hooks.example.com/...`), an optional `password` is
sent as a bearer token. Define it outside the code, e.g.

    AIRFLOW_CONN_CDP_ALERTS='{"conn_type": "http", "host": "https://hooks.example.com/T0/B0/x"}'

Alert texts carry ids and error *types*; a message is included only for `CdpError`, whose
messages are PII-free by contract (third-party errors can quote data values).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

ALERT_CONN_ID = "cdp_alerts"
TIMEOUT_SECONDS = 10.0


def task_failed(context: Any) -> None:
    """`on_failure_callback` of every CDP task (runs in the worker after the last try)."""
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    notify({
        "event": "task_failed",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error": describe_error(exception),
    })


def dag_failed(context: Any) -> None:
    """`on_failure_callback` of every CDP DAG (runs when a DAG run ends failed)."""
    dag_run = context.get("dag_run")
    notify({
        "event": "dag_run_failed",
        "dag_id": getattr(dag_run, "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None),
        "reason": context.get("reason"),
    })


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Deadline-alert callback (runs in the triggerer): a DAG run is still not done in time."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    notify({
        "event": "deadline_missed",
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id") or run.get("run_id"),
        "deadline": str(deadline.get("deadline_time")),
        "allowed": kwargs.get("allowed"),
    })


def deadline(interval: timedelta) -> Any:
    """A deadline alert: the run must finish within `interval` of being queued.

    Measured from the queue time (not the logical date) so it also fits asset-triggered runs,
    which have no logical date.
    """
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(deadline_missed, kwargs={"allowed": str(interval)}),
    )


def describe_error(exception: BaseException | str | None) -> str | None:
    if exception is None:
        return None
    if isinstance(exception, str):  # Airflow passes a string for some failures (e.g. zombies)
        return exception[:200]
    from cdp.errors import CdpError

    if isinstance(exception, CdpError):
        return f"{type(exception).__name__}: {str(exception)[:1000]}"
    return f"{type(exception).__name__} (details in the task log)"


def notify(alert: dict[str, Any]) -> bool:
    """Log the alert and POST it to the `cdp_alerts` connection when one is defined.

    Never raises: an alert that cannot be delivered must not hide the failure it reports.
    Returns True when it was delivered to the webhook.
    """
    log.error("CDP ALERT %s", json.dumps(alert, default=str, sort_keys=True))
    try:
        conn = _alert_connection()
        if conn is None:
            return False
        import httpx

        headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
        response = httpx.post(_url(conn), json=alert, headers=headers, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return True
    except Exception as exc:  # noqa: BLE001 -- delivery problems are logged, never raised
        log.warning("alert not delivered to connection %s: %s", ALERT_CONN_ID,
                    type(exc).__name__)
        return False


def _alert_connection() -> Any:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(ALERT_CONN_ID)
    except AirflowNotFoundException:
        return None


def _url(conn: Any) -> str:
    host = conn.host or ""
    if host.startswith(("http://", "https://")):
        return host
    scheme = "https" if conn.conn_type in ("https",) else "http"
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema}" if conn.schema else ""
    return f"{scheme}://{host}{port}{path}"
