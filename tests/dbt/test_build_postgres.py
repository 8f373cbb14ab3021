"""The same dbt project on a real PostgreSQL (dbt-postgres), started for the session with initdb /
pg_ctl in a temp directory on a free port.

`cdp build` on target postgres copies the demo lake and the identity tables into the database
(cdp/build_postgres.py), then runs the full `dbt build` (models, data tests, unit tests). The
marts and segments must hold exactly what the DuckDB build of the same data holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from cdp.build import build
from cdp.config import Settings, load_settings
from cdp.errors import CdpError
from tests.conftest import write_config
from tests.dbt.conftest import Built
from tests.dbt.test_build_duckdb import _copy_of
from tests.postgres_server import free_port, throwaway_postgres

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL (tests/postgres_server.py) with an empty database `cdp_test`; the
    CDP_PG_* settings to reach it."""
    with throwaway_postgres() as port:
        with psycopg.connect(host="127.0.0.1", port=port, user="cdp", dbname="postgres",
                             autocommit=True) as con:
            con.execute("create database cdp_test")
        yield {"CDP_PG_HOST": "127.0.0.1", "CDP_PG_PORT": str(port), "CDP_PG_USER": "cdp",
               "CDP_PG_DBNAME": "cdp_test"}


def _postgres_settings(built: Built, demo_settings: Settings, folder: Path) -> Settings:
    """The demo lake, a copy of the built warehouse (identity tables), target postgres."""
    copy = _copy_of(built, demo_settings, folder)
    demo = demo_settings.resolved_paths
    config = write_config(folder, paths={
        "data_dir": str(copy.resolved_paths.data_dir), "landing": str(demo.landing),
        "lake": str(demo.lake), "truth": str(demo.truth)},
        warehouse={"target": "postgres", "dbt_project_dir": str(REPO / "dbt")})
    return load_settings(config, env={})


def _pg(server: dict[str, str], sql: str) -> list[tuple]:
    with psycopg.connect(host=server["CDP_PG_HOST"], port=int(server["CDP_PG_PORT"]),
                         user=server["CDP_PG_USER"], dbname=server["CDP_PG_DBNAME"]) as con:
        return con.execute(sql).fetchall()


def test_the_project_builds_on_postgres_with_the_duckdb_results(
        built: Built, demo_settings: Settings, postgres_server: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in postgres_server.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CDP_PG_SCHEMA", raising=False)
    settings = _postgres_settings(built, demo_settings, tmp_path)

    summary = build(settings)

    # every node ran and passed, as many as on DuckDB
    nodes, duck = summary.figures["nodes"], built.summary.figures["nodes"]
    model_files = list((REPO / "dbt" / "models").rglob("*.sql"))
    assert nodes["model"] == {"passed": len(model_files), "failed": 0, "skipped": 0,
                              "warned": 0}
    assert nodes["test"] == duck["test"] and nodes["unit_test"] == duck["unit_test"]
    # the same numbers as the DuckDB build of the same data
    assert summary.figures["rows"] == built.summary.figures["rows"]
    assert summary.figures["as_of_date"] == built.summary.figures["as_of_date"]
    assert summary.figures["omnichannel_spend_index"] == \
        built.summary.figures["omnichannel_spend_index"]

    # ... read from Postgres itself: the marts and segments are tables of the public schema
    tables = {r[0] for r in _pg(postgres_server, """
        select table_name from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE'""")}
    assert set(summary.figures["rows"]) <= tables
    assert set(_pg(postgres_server, "select segment, customer_id from segment_membership")) == \
        set(built.query("select segment, customer_id from segment_membership"))
    assert _pg(postgres_server, "select sum(lifetime_value), sum(loyalty_points) "
                                "from customer_360") == \
        built.query("select sum(lifetime_value), sum(loyalty_points) from customer_360")

    # the sources were copied whole, with their types (lists as arrays, decimals exact)
    lake = demo_settings.resolved_paths.lake
    with duckdb.connect() as con:
        raw_orders = con.execute(
            "select count(*), sum(order_total) from read_parquet(?, union_by_name = true)",
            [str(lake / "raw/web_orders/*/*.parquet")]).fetchall()
    assert _pg(postgres_server, "select count(*), sum(order_total) from raw.web_orders") == \
        raw_orders
    assert _pg(postgres_server, """
        select count(*), sum(cardinality(emails)), pg_typeof(min(emails))::text
        from identity.golden_profiles""")[0] == (
        *built.query("select count(*), sum(len(emails)) from identity.golden_profiles")[0],
        "text[]")

    # a second build reloads the sources and changes nothing
    again = build(settings, resource_types=("model",))
    assert again.figures["rows"] == summary.figures["rows"]


def test_an_unreachable_server_is_a_clear_error_without_the_password(
        built: Built, demo_settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("CDP_PG_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("DBT_ENV_SECRET_CDP_PG_PASSWORD", "pa55-not-in-messages")
    settings = _postgres_settings(built, demo_settings, tmp_path)
    with pytest.raises(CdpError, match="cannot connect to PostgreSQL") as failure:
        build(settings)
    assert "pa55-not-in-messages" not in str(failure.value)
