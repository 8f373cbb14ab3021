"""THE ONE PLACE where DAG tasks call the Great Expectations gates (`cdp.gates`).

    run_gate("raw" | "identity" | "marts")  -> cdp.gates.run_gate(settings, stage, ...)
    activation_allowed()                    -> cdp.gates.activation_allowed(settings)

If the gates' API changes, adapt the calls below; nothing else in dags/ needs to change.

While `cdp.gates` is not installed the gate tasks are no-ops that log a warning saying gates
are not installed. Only a missing `cdp.gates` module is tolerated: any other import problem (a
broken gate module, Great Expectations missing) fails the task.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from cdp.errors import CdpError
from cdp_dags import common

log = logging.getLogger(__name__)

GATES_MODULE = "cdp.gates"


def _gates() -> Any | None:
    """The `cdp.gates` module, or None when it is not installed."""
    try:
        return importlib.import_module(GATES_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != GATES_MODULE:
            raise
        return None


def run_gate(stage: str, **options: Any) -> dict[str, Any]:
    """Run the gate of `stage`; fail the task (without retries) when the gate fails.

    `options` go to `cdp.gates.run_gate` as they are (e.g. `confirm=True` for marts).
    """
    from airflow.sdk.exceptions import AirflowFailException

    gates_module = _gates()
    if gates_module is None:
        log.warning("Great Expectations gates are not installed (no module %s): "
                    "the %s gate is skipped", GATES_MODULE, stage)
        return {"stage": stage, "skipped": True, "reason": f"{GATES_MODULE} not installed"}
    settings = common.settings()
    try:
        figures = common.run_step(lambda: gates_module.run_gate(settings, stage, **options))
    except CdpError as exc:
        # A failed gate is a data problem: retrying cannot fix it, and nothing downstream runs.
        raise AirflowFailException(f"{stage} gate failed: {exc}") from exc
    return {"stage": stage, "skipped": False, **figures}


def activation_allowed() -> dict[str, Any]:
    """Fail (without retries) unless the last marts gate passed or was confirmed."""
    from airflow.sdk.exceptions import AirflowFailException

    gates_module = _gates()
    if gates_module is None:
        log.warning("Great Expectations gates are not installed (no module %s): "
                    "activation is not gated", GATES_MODULE)
        return {"allowed": True, "reason": f"{GATES_MODULE} not installed"}
    allowed, reason = gates_module.activation_allowed(common.settings())
    if not allowed:
        raise AirflowFailException(f"activation stopped: {reason}")
    log.info(reason)
    return {"allowed": True, "reason": reason}
