"""Finding the person: which customers, identifiers and source records an erasure covers.

Looked up in the identity tables (read only). An email or phone is normalised first
(identity.standardise) and matched against identity records and golden profiles (their
`email`/`emails`, `phone`/`phones`). Identifiers are tombstoned only when they are the person's
own: values that identity resolution classed `shared` (a family email) or `junk` (a store's
placeholder phone) also belong to other people, so tombstoning them would block those people
too; the person's records carrying them are still removed (by record).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from cdp.config import Settings
from cdp.erasure.matcher import IDENTIFIER_KINDS, standardise
from cdp.errors import CdpError
from cdp.warehouse import connect

SCHEMA = "identity"


@dataclass
class Target:
    """What one request covers (values here are PII: never print or log them)."""

    matched_by: str
    customer_ids: set[str] = field(default_factory=set)
    identifiers: dict[str, set[str]] = field(default_factory=dict)  # kind -> normalised
    records: set[tuple[str, str]] = field(default_factory=set)       # (source, record id)
    not_tombstoned: int = 0   # shared or junk identifiers of the person (not blocked)
    shared: set[tuple[str, str]] = field(default_factory=set)  # (kind, value) shared / junk
    present: set[str] = field(default_factory=set)  # customer ids found in identity tables
    needles: set[str] = field(default_factory=set)  # exact strings to scrub from text files

    def add_identifier(self, kind: str, value: str) -> None:
        self.identifiers.setdefault(kind, set()).add(value)
        self.needles.add(value)


def identity_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables "
                       "where table_schema = ? and table_type = 'BASE TABLE'",
                       [SCHEMA]).fetchall()
    return {r[0] for r in rows}


def open_warehouse(settings: Settings, read_only: bool) -> duckdb.DuckDBPyConnection | None:
    """A connection to the warehouse, or None when there is no warehouse file yet."""
    path = settings.resolved_paths.warehouse
    if not path.exists():
        return None
    try:
        try:
            return connect(settings, read_only=read_only)
        except duckdb.ConnectionException:
            # This process holds the file open read-write already (an in-process `cdp build`:
            # dbt-duckdb keeps its connection); DuckDB then allows only that configuration.
            return connect(settings, read_only=False)
    except duckdb.IOException as exc:  # another process holds the write lock
        raise CdpError(f"cannot open the warehouse {path}: {str(exc).splitlines()[0]}; "
                       "retry when the running step has finished") from None


def locate(settings: Settings, customer_ids: list[str], email: str | None,
           phone: str | None) -> Target:
    """The customers, identifiers and source records of one request.

    Raises CdpError when the email or phone is invalid, or matches several customers (the
    message names their ids: a person may then confirm them with `--customer-id`)."""
    matched_by = "customer_id" if customer_ids else "email" if email else "phone"
    target = Target(matched_by)
    requested: tuple[str, str] | None = None
    if email is not None or phone is not None:
        kind = "email" if email is not None else "phone"
        value = standardise(kind, email if email is not None else phone,
                            settings.default_region)
        if value is None:
            raise CdpError(f"the {kind} given is not a valid {kind} address"
                           if kind == "email" else "the phone given is not a valid number")
        requested = (kind, value)
    con = open_warehouse(settings, read_only=True)
    try:
        tables = identity_tables(con) if con is not None else set()
        if requested is not None:
            found = _customers_by(con, tables, *requested) if con is not None else set()
            if len(found) > 1:
                ids = ", ".join(sorted(found))
                raise CdpError(
                    f"the {requested[0]} given belongs to {len(found)} customers ({ids}); if "
                    "they are all the requester, run `cdp forget` with --customer-id for each")
            target.customer_ids = found
        else:
            target.customer_ids = set(customer_ids)
        if con is not None and target.customer_ids:
            _collect(con, tables, target, settings)
    finally:
        if con is not None:
            con.close()
    if requested is not None:
        kind, value = requested
        if _blockable(settings, kind, value, target.shared):
            target.add_identifier(kind, value)
        else:
            target.needles.add(value)
    return target


def _customers_by(con: duckdb.DuckDBPyConnection, tables: set[str], kind: str,
                  value: str) -> set[str]:
    found: set[str] = set()
    if "identity_records" in tables:
        found |= {r[0] for r in con.execute(
            f"select distinct customer_id from {SCHEMA}.identity_records "
            f"where {kind} = ? and customer_id is not null", [value]).fetchall()}
    if "golden_profiles" in tables:
        plural = {"email": "emails", "phone": "phones"}[kind]
        found |= {r[0] for r in con.execute(
            f"select customer_id from {SCHEMA}.golden_profiles "
            f"where {kind} = ? or list_contains({plural}, ?)", [value, value]).fetchall()}
    return found


def _collect(con: duckdb.DuckDBPyConnection, tables: set[str], target: Target,
             settings: Settings) -> None:
    """The customers' source records and own identifiers (not shared / junk ones)."""
    con.execute("create or replace temp table _erase_ids (customer_id varchar)")
    con.executemany("insert into _erase_ids values (?)", [[c] for c in sorted(target.customer_ids)])
    if "identity_clusters" in tables:
        rows = con.execute(
            f"select source, source_record_id, record_key from {SCHEMA}.identity_clusters "
            "where customer_id in (select customer_id from _erase_ids)").fetchall()
        for source, record_id, record_key in rows:
            target.records.add((source, record_id))
            target.needles.update((record_id, record_key))
        target.present |= {r[0] for r in con.execute(
            f"select distinct customer_id from {SCHEMA}.identity_clusters "
            "where customer_id in (select customer_id from _erase_ids)").fetchall()}
    if "golden_profiles" in tables:
        target.present |= {r[0] for r in con.execute(
            f"select customer_id from {SCHEMA}.golden_profiles "
            "where customer_id in (select customer_id from _erase_ids)").fetchall()}
    if "identity_records" not in tables:
        return
    kinds = [k for k in IDENTIFIER_KINDS if k in settings.identity.identifiers]
    values: set[tuple[str, str]] = set()
    for kind in kinds:
        values |= {(kind, r[0]) for r in con.execute(
            f"select distinct {kind} from {SCHEMA}.identity_records "
            f"where customer_id in (select customer_id from _erase_ids) "
            f"and {kind} is not null").fetchall()}
    classes: dict[tuple[str, str], str] = {}
    if "identity_identifiers" in tables and values:
        con.execute("create or replace temp table _erase_values (kind varchar, value varchar)")
        con.executemany("insert into _erase_values values (?, ?)", sorted(values))
        classes = {(k, v): c for k, v, c in con.execute(
            f"select i.kind, i.value, i.class from {SCHEMA}.identity_identifiers i "
            "join _erase_values e on e.kind = i.kind and e.value = i.value").fetchall()}
    target.shared = {kv for kv, c in classes.items() if c in ("shared", "junk")}
    for kind, value in sorted(values):
        if _blockable(settings, kind, value, target.shared):
            target.add_identifier(kind, value)
        else:
            target.not_tombstoned += 1
            target.needles.add(value)


def _blockable(settings: Settings, kind: str, value: str,
               shared: set[tuple[str, str]]) -> bool:
    """An identifier may be tombstoned: it is the person's own (not shared, not junk)."""
    if (kind, value) in shared:
        return False
    junk = settings.identity.junk_values.get(kind, [])
    return value not in {standardise(kind, j, settings.default_region) for j in junk}
