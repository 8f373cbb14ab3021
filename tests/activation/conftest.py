"""Fixtures for activation tests: a warehouse with the dbt contract tables built by hand (the
dbt output may not exist yet), local stand-ins for the remote APIs, a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import duckdb
import pytest

from cdp.activation import http
from cdp.config import Settings
from tests.activation.fakes import FakeServer
from tests.postgres_server import throwaway_postgres

PROFILE_COLUMNS = {
    "customer_id": "varchar", "first_name": "varchar", "last_name": "varchar",
    "email": "varchar", "phone": "varchar", "birth_date": "date", "gender": "varchar",
    "city": "varchar", "postcode": "varchar", "country": "varchar",
    "email_opt_in": "boolean", "sms_opt_in": "boolean", "ads_opt_in": "boolean",
}
FIRST = ["Çağla", "Ayşe", "İlkay", "Mehmet", "Zeynep", "Emre", "Elif", "Burak", "Selin", "Can"]
LAST = ["Şahin", "Yılmaz", "Öztürk", "Kaya", "Demir", "Çelik", "Aydın", "Arslan", "Koç", "Er"]


def person(i: int, **overrides: Any) -> dict[str, Any]:
    """A plausible dim_customers row; every consent granted unless overridden."""
    row = {
        "customer_id": f"C{i:04d}",
        "first_name": FIRST[i % len(FIRST)],
        "last_name": LAST[(i // 3) % len(LAST)],
        "email": f" {FIRST[i % len(FIRST)]}.{i}@Example.com ",
        "phone": f"+90532{i:07d}",
        "birth_date": date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
        "gender": "F" if i % 2 else "M",
        "city": "İstanbul" if i % 3 else "Çanakkale",
        "postcode": f"{34000 + i}",
        "country": "TR",
        "email_opt_in": True, "sms_opt_in": True, "ads_opt_in": True,
    }
    row.update(overrides)
    return row


class Warehouse:
    """Writes segment_membership, dim_customers and identity.erased_customers into the
    warehouse file `cdp sync` reads, and reads back what it wrote."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.resolved_paths.warehouse
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self, profiles: list[dict[str, Any]], members: dict[str, list[str]],
             erased: list[str] | None = None) -> None:
        with duckdb.connect(str(self.path)) as con:
            columns = ", ".join(f"{name} {kind}" for name, kind in PROFILE_COLUMNS.items())
            con.execute(f"create or replace table dim_customers ({columns})")
            con.executemany(
                f"insert into dim_customers values ({', '.join('?' * len(PROFILE_COLUMNS))})",
                [[p[c] for c in PROFILE_COLUMNS] for p in profiles])
            con.execute("create or replace table segment_membership "
                        "(segment varchar, customer_id varchar, since date)")
            rows = [[segment, cid, date(2024, 1, 1)]
                    for segment, ids in members.items() for cid in ids]
            if rows:
                con.executemany("insert into segment_membership values (?, ?, ?)", rows)
            if erased is not None:
                con.execute("create schema if not exists identity")
                con.execute("create or replace table identity.erased_customers "
                            "(customer_id varchar, erased_at timestamp)")
                for cid in erased:
                    con.execute("insert into identity.erased_customers values (?, now())",
                                [cid])

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path)) as con:
            return con.execute(sql, params or []).fetchall()

    def tables(self, schema: str) -> set[str]:
        return {r[0] for r in self.query(
            "select table_name from information_schema.tables where table_schema = ?",
            [schema])}



@pytest.fixture
def warehouse(settings: Settings) -> Warehouse:
    return Warehouse(settings)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept: retry tests take no time."""
    recorded: list[float] = []
    monkeypatch.setattr(http, "sleep", recorded.append)
    return recorded


@pytest.fixture
def serve() -> Iterator:
    """serve(app) -> a started FakeServer on 127.0.0.1, stopped after the test."""
    servers: list[FakeServer] = []

    def start(app: Any) -> FakeServer:
        server = FakeServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- a real, throwaway PostgreSQL ------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (see tests/postgres_server.py)."""
    with throwaway_postgres() as port:
        yield f"host=127.0.0.1 port={port} user=cdp dbname=postgres"


FAST_RETRY = {"attempts": 3, "backoff_base": 0.5, "backoff_max": 4.0, "timeout": 5.0}


def configure(settings: Settings, destinations: dict[str, dict], **extra: Any) -> Settings:
    """Give the test's settings an `activation:` section (waits are recorded, see `waits`)."""
    settings.activation = {"destinations": destinations, "retry": dict(FAST_RETRY), **extra}
    return settings


def state_rows(warehouse: Warehouse, destination: str, segment: str) -> dict[str, str]:
    """customer_id -> "delivered" (acknowledged) or "in_flight" (sent or being sent, not
    acknowledged: an addition in flight is not delivered yet)."""
    rows = dict(warehouse.query(
        "select customer_id, 'delivered' from activation.sync_state "
        "where destination = ? and segment = ?", [destination, segment]))
    rows.update(warehouse.query(
        "select customer_id, 'in_flight' from activation.sync_inflight "
        "where destination = ? and segment = ?", [destination, segment]))
    return rows
