"""Destination secrets from Airflow, handed to `cdp.activation` the way the CLI gets them.

Each destination in cdp.yaml names the environment variables holding its secrets
(`token_env`, `developer_token_env`, `url_env`, `secret_env`, `dsn_env`). Under Airflow the
values come from the secrets backend instead of the worker's environment:

- `dsn_env: STORE_DB_DSN`  -> Airflow connection `store_db_dsn` (its URI), e.g.
  `AIRFLOW_CONN_STORE_DB_DSN='postgresql://user:pass@host:5432/db'`;
- any other `*_env: NAME`  -> Airflow Variable `NAME`, e.g. `AIRFLOW_VAR_META_ACCESS_TOKEN=...`.

A variable already set in the worker's environment wins. Values are registered with Airflow's
secret masker and exist in the environment only while the sync runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from cdp.activation.config import load_activation_config
from cdp.config import Settings

SECRET_FIELDS = ("token_env", "developer_token_env", "url_env", "secret_env", "dsn_env")


def secret_names(destination: Any) -> dict[str, str]:
    """env variable name -> the field naming it, for one destination's config."""
    return {name: field for field in SECRET_FIELDS
            if (name := getattr(destination, field, None))}


def lookup(env_name: str, field: str) -> str | None:
    """The secret for `env_name` from Airflow (connection for DSNs, else a Variable)."""
    from airflow.sdk import Connection, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    if field == "dsn_env":
        try:
            conn = Connection.get(env_name.lower())
        except AirflowNotFoundException:
            return None
        value = conn.get_uri()
    else:
        value = Variable.get(env_name, default=None)
    if value:
        mask_secret(value, name=env_name)
    return value or None


@contextlib.contextmanager
def destination_secrets(settings: Settings, destination: str) -> Iterator[list[str]]:
    """Export the destination's secrets found in Airflow; yield the names exported.

    Names found nowhere are left unset: `cdp.activation` then fails with an error naming the
    variable, and only when a real (non dry-run) sync needs it.
    """
    config = load_activation_config(settings)
    chosen = config.destinations.get(destination)
    names = secret_names(chosen) if chosen is not None else {}
    exported: list[str] = []
    try:
        for env_name, field in names.items():
            if os.environ.get(env_name):
                continue
            value = lookup(env_name, field)
            if value is not None:
                os.environ[env_name] = value
                exported.append(env_name)
        yield exported
    finally:
        for env_name in exported:
            os.environ.pop(env_name, None)
