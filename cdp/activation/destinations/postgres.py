"""Postgres: upsert segment members into a table of an operational database.

Table (created when missing): (segment, customer_id) primary key, one text column per
configured field, `active` and `synced_at`. Adds upsert. Removes: `mirror` mode deletes the
rows; `upsert` mode keeps a member who merely left the segment as `active = false`, but
deletes rows removed for lack of consent, erasure or a vanished profile. Each batch is one
transaction, so it is applied entirely or not at all, and replaying it is harmless.
SQL is composed with psycopg.sql (identifiers quoted) and values are parameters.
"""

from __future__ import annotations

import random

import psycopg
from psycopg import sql

from cdp.activation import http
from cdp.activation.config import PostgresDestination, secret
from cdp.activation.destinations.base import ADD, Adapter, Batch, BatchResult
from cdp.activation.payload import generic_keys
from cdp.config import Settings
from cdp.errors import CdpError

# Reasons for which a row must disappear even in upsert mode.
DELETE_REASONS = frozenset({"erased", "no_consent", "no_profile"})


class PostgresAdapter(Adapter):
    config: PostgresDestination

    def __init__(self, config: PostgresDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = generic_keys(config.fields, settings.default_region)
        self.columns = [k.name for k in self.keys if k.name != "customer_id"]
        self.conn: psycopg.Connection | None = None

    @property
    def table(self) -> sql.Composed:
        return sql.Identifier(self.config.schema_name, self.config.table)

    def prepare(self) -> None:
        self.dsn = secret(self.config.dsn_env, self.name, "Postgres connection string")
        self._connect()
        self._ensure_table()

    def _connect(self) -> None:
        try:
            self.conn = psycopg.connect(self.dsn, connect_timeout=int(self.retry.timeout))
        except psycopg.OperationalError as exc:
            raise CdpError(f"destination '{self.name}': cannot connect to Postgres "
                           f"({type(exc).__name__})") from None

    def _ensure_table(self) -> None:
        assert self.conn is not None
        columns = sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(c)) for c in self.columns)
        with self.conn.transaction():
            self.conn.execute(sql.SQL("create schema if not exists {}").format(
                sql.Identifier(self.config.schema_name)))
            self.conn.execute(sql.SQL(
                "create table if not exists {} (segment text not null, customer_id text not null"
                "{}{}, active boolean not null default true, "
                "synced_at timestamptz not null default now(), "
                "primary key (segment, customer_id))").format(
                    self.table, sql.SQL(", ") if self.columns else sql.SQL(""), columns))
            present = {row[0] for row in self.conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = %s and table_name = %s",
                [self.config.schema_name, self.config.table])}
        missing = sorted({"segment", "customer_id", "active", "synced_at", *self.columns}
                         - present)
        if missing:
            raise CdpError(f"destination '{self.name}': table "
                           f"{self.config.schema_name}.{self.config.table} lacks columns "
                           f"{missing}")

    def _upsert(self, cur: psycopg.Cursor, batch: Batch) -> None:
        names = ["segment", "customer_id", *self.columns]
        updates = [*self.columns, "active", "synced_at"]
        statement = sql.SQL(
            "insert into {} ({}, active, synced_at) values ({}, true, now()) "
            "on conflict (segment, customer_id) do update set {}").format(
                self.table,
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(sql.Placeholder() * len(names)),
                sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                                   for c in updates))
        cur.executemany(statement, [
            [batch.segment, cid, *(row[c] for c in self.columns)]
            for cid, row in zip(batch.customer_ids, batch.records(self.columns), strict=True)])

    def _remove(self, cur: psycopg.Cursor, batch: Batch) -> None:
        if self.config.mode == "mirror":
            gone, kept = batch.customer_ids, []
        else:
            pairs = list(zip(batch.customer_ids, batch.reasons, strict=True))
            gone = [cid for cid, reason in pairs if reason in DELETE_REASONS]
            kept = [cid for cid, reason in pairs if reason not in DELETE_REASONS]
        if gone:
            cur.execute(sql.SQL("delete from {} where segment = %s and customer_id = any(%s)")
                        .format(self.table), [batch.segment, gone])
        if kept:
            cur.execute(sql.SQL("update {} set active = false, synced_at = now() "
                                "where segment = %s and customer_id = any(%s)")
                        .format(self.table), [batch.segment, kept])

    def send(self, batch: Batch) -> BatchResult:
        error = ""
        for attempt in range(self.retry.attempts):
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.dsn,
                                                connect_timeout=int(self.retry.timeout))
                with self.conn.transaction(), self.conn.cursor() as cur:
                    if batch.operation == ADD:
                        self._upsert(cur, batch)
                    else:
                        self._remove(cur, batch)
                return BatchResult.ok(len(batch))
            except psycopg.OperationalError as exc:  # connection lost, server restarting
                error = type(exc).__name__
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
            except psycopg.Error as exc:  # constraint, type, permission: will not heal
                return BatchResult("rejected", 0, len(batch),
                                   error=f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})")
            if attempt + 1 < self.retry.attempts:
                http.sleep(http.backoff_delay(attempt, self.retry, random.random))
        return BatchResult("failed", 0, 0, error=f"{error} after {self.retry.attempts} attempts")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
