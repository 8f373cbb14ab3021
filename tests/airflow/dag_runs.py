"""Running DAGs with `dag.test()` in tests: the set-up it needs, and reading back its results
(task states, XComs, asset events) from the metadata DB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def dag_test_mode(dagbag: Any) -> Iterator[None]:
    """What `dag.test()` needs around it in a test.

    - Deadline alerts are set aside: in Airflow 3.3.2 `dag.test()` builds its scheduler DAG
      without storing the alerts the DAG processor stores, and the run crashes when it
      succeeds (DeadlineAlertModel.get_by_id gets a dict). Scheduled runs are not affected.
    - Retries are 0, so a failure fails at once instead of waiting out the retry delays.
    - Each `dag.test()` re-parses the DAGs folder to sync it to the metadata DB; the given
      DagBag, parsed once, is handed over instead (same files, same bundle).
    """
    import airflow.dag_processing.dagbag as dagbag_module

    saved = {dag_id: (dag.deadline, {t.task_id: t.retries for t in dag.tasks})
             for dag_id, dag in dagbag.dags.items()}
    for dag in dagbag.dags.values():
        dag.deadline = None
        for task in dag.tasks:
            task.retries = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dagbag_module, "BundleDagBag", lambda *args, **kwargs: dagbag)
        try:
            yield
        finally:
            for dag_id, (deadline, retries) in saved.items():
                dag = dagbag.dags[dag_id]
                dag.deadline = deadline
                for task in dag.tasks:
                    task.retries = retries[task.task_id]


def run(dagbag: Any, dag_id: str, **kwargs: Any) -> Any:
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag_run = dagbag.dags[dag_id].test(**kwargs)
    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    failed = {k: s for k, s in states.items()
              if s not in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)}
    assert dag_run.state == DagRunState.SUCCESS and not failed, f"{dag_id}: {failed}"
    return dag_run


def xcom(dag_run: Any, task_id: str) -> list[Any]:
    """The XCom return values of a task (one per map index), as the task returned them."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id,
            key="return_value")).all()
        return [XComModel.deserialize_value(row)
                for row in sorted(rows, key=lambda r: r.map_index)]


def asset_events() -> dict[str, list[dict[str, Any]]]:
    """Asset name -> the `extra` of each of its events in the metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .order_by(AssetEvent.id)).all()
    events: dict[str, list[dict[str, Any]]] = {}
    for name, extra in rows:
        events.setdefault(name, []).append(extra or {})
    return events
