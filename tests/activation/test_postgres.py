"""Postgres destination against a real, throwaway PostgreSQL server (see conftest)."""

from __future__ import annotations

import psycopg
import pytest

from cdp.activation import sync
from cdp.config import Settings
from cdp.errors import CdpError
from tests.activation.conftest import Warehouse, configure, person

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(settings: Settings, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch,
       request: pytest.FixtureRequest):
    """A fresh schema per test; the DSN reaches sync through the environment only."""
    schema = f"t_{request.node.name[:40].lower()}"
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(psycopg.sql.SQL("drop schema if exists {} cascade").format(
            psycopg.sql.Identifier(schema)))
    monkeypatch.setenv("STORE_DB_DSN", postgres_dsn)

    def setup(mode: str, **extra: object) -> str:
        configure(settings, {"store": {
            "type": "postgres", "dsn_env": "STORE_DB_DSN", "schema": schema,
            "table": "segment_members", "mode": mode, "purpose": "sms", "batch_size": 2,
            "fields": ["customer_id", "phone_sha256", "since"], **extra}})
        return schema

    return setup


def rows(dsn: str, schema: str) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(dsn) as con:
        result = con.execute(psycopg.sql.SQL(
            "select segment, customer_id, phone_sha256, since, active from {}.segment_members"
        ).format(psycopg.sql.Identifier(schema))).fetchall()
    return {(r[0], r[1]): r[2:] for r in result}


def test_mirror_upserts_and_deletes(settings: Settings, warehouse: Warehouse, pg,
                                    postgres_dsn: str) -> None:
    schema = pg("mirror")
    people = [person(i) for i in range(1, 6)] + [person(6, sms_opt_in=None)]
    warehouse.load(people, {"vip": ["C0001", "C0002", "C0003", "C0006"], "new": ["C0004"]})
    assert sync(settings).ok
    table = rows(postgres_dsn, schema)
    assert set(table) == {("vip", "C0001"), ("vip", "C0002"), ("vip", "C0003"),
                          ("new", "C0004")}  # C0006 has no SMS consent
    assert table[("vip", "C0001")][1:] == ("2024-01-01", True)

    people[1] = person(2, phone="+905559998877")  # changed: upserted in place
    warehouse.load(people, {"vip": ["C0002", "C0003"], "new": ["C0004", "C0005"]})
    result = sync(settings)
    assert result.ok
    table = rows(postgres_dsn, schema)
    assert set(table) == {("vip", "C0002"), ("vip", "C0003"), ("new", "C0004"),
                          ("new", "C0005")}
    import hashlib
    assert table[("vip", "C0002")][0] == hashlib.sha256(b"+905559998877").hexdigest()


def test_upsert_mode_keeps_leavers_inactive_but_deletes_erased_and_unconsented(
        settings: Settings, warehouse: Warehouse, pg, postgres_dsn: str) -> None:
    schema = pg("upsert")
    people = [person(i) for i in range(1, 5)]
    warehouse.load(people, {"vip": ["C0001", "C0002", "C0003", "C0004"]})
    sync(settings)
    people[2] = person(3, sms_opt_in=False)
    warehouse.load(people, {"vip": ["C0002", "C0003", "C0004"]}, erased=["C0004"])
    result = sync(settings)
    assert result.figures["pairs"][0]["removes_by_reason"] == {
        "left": 1, "no_consent": 1, "erased": 1}
    table = rows(postgres_dsn, schema)
    assert set(table) == {("vip", "C0001"), ("vip", "C0002")}
    assert table[("vip", "C0001")][2] is False and table[("vip", "C0002")][2] is True


def test_incompatible_table_is_a_clear_error(settings: Settings, warehouse: Warehouse, pg,
                                             postgres_dsn: str) -> None:
    schema = pg("mirror")
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(psycopg.sql.SQL("create schema {}").format(psycopg.sql.Identifier(schema)))
        con.execute(psycopg.sql.SQL(
            "create table {}.segment_members (segment text, customer_id text)").format(
                psycopg.sql.Identifier(schema)))
    warehouse.load([person(1)], {"vip": ["C0001"]})
    with pytest.raises(CdpError, match="lacks columns"):
        sync(settings)
