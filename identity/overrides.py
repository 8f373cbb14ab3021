"""Steward overrides: decisions by people that every resolve run honours.

- `must_link` (left_ref, right_ref): the two records are one customer. The clustering applies
  the pair first, past every guard.
- `cannot_link` (left_ref, right_ref): the two records are never in one customer, whatever links
  them (checked before every merge; a refused link is logged with guard `steward_cannot_link`).
  Added between two records of one customer it is an *unmerge*: the next run splits the customer
  and logs an `override_split`.
- `shared_identifier` (identifier_kind, identifier_value): the value is used by several people;
  never merge on it. Before rule links and Splink it is classed `shared`, gets no rule link (not
  even the name-and-birth-date `+person` link) and is hidden from Splink.

Records are referenced as `channel:source_record_id` (what stewards see in the channel's own
system; it never changes). A customer id may be given instead: it is turned into one of that
customer's source records (the smallest `channel:id`) when the override is added, and the
customer id is kept beside it (`left_customer_id` / `right_customer_id`) for the audit trail.
Binding to records rather than ids is what survives re-runs: ids merge and split, records don't.

Overrides live in the warehouse (`identity.steward_overrides`), next to the id registry and
history they shape: resolve reads them in the database it writes its outputs to, and never
replaces the table. Removing one keeps its row (`active = false`, who and when).

Identifier values are stored standardised exactly as the pipeline standardises them, and are
shown masked everywhere (CLI, errors, logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates.masking import mask_value
from cdp.summary import StepSummary
from identity import standardise as std
from identity.engines.base import Engine
from identity.records import IDENTIFIERS
from identity.state import ensure_tables, utc_now
from identity.store import SCHEMA, has_table, open_warehouse_if_any, transaction

KINDS = ("must_link", "cannot_link", "shared_identifier")
PAIR_KINDS = ("must_link", "cannot_link")
CLI_KINDS = {"must-link": "must_link", "cannot-link": "cannot_link", "shared": "shared_identifier"}


def _parse_record_ref(settings: Settings, ref: str) -> tuple[str, str]:
    channel, _, record_id = ref.partition(":")
    channel, record_id = channel.strip(), record_id.strip()
    if not channel or not record_id:
        raise CdpError(f"'{ref}' is not a record reference: use channel:source_record_id "
                       "or a customer id")
    if channel not in settings.channels:
        raise CdpError(f"unknown channel '{channel}' in '{ref}'; channels: "
                       + ", ".join(settings.channels))
    return channel, record_id


def _resolve_ref(con: Any, settings: Settings, ref: str) -> tuple[str, str | None, bool]:
    """(`channel:id`, customer id it belongs to now, whether it is resolved now)."""
    ref = ref.strip()
    has_clusters = con is not None and has_table(con, "identity_clusters")
    if ":" not in ref:  # a customer id: bind to one of its source records
        if not has_clusters:
            raise CdpError(f"customer id {ref} given but there are no identity tables yet: "
                           "run `cdp resolve` first, or name records as channel:id")
        row = con.execute(f"""
            select source, source_record_id from {SCHEMA}.identity_clusters
            where customer_id = ? order by source, source_record_id limit 1""",
                          [ref]).fetchall()
        if not row:
            raise CdpError(f"no customer {ref} in identity.identity_clusters")
        return f"{row[0][0]}:{row[0][1]}", ref, True
    channel, record_id = _parse_record_ref(settings, ref)
    customer = None
    if has_clusters:
        found = con.execute(f"""
            select customer_id from {SCHEMA}.identity_clusters
            where source = ? and source_record_id = ?""", [channel, record_id]).fetchall()
        customer = found[0][0] if found else None
    return f"{channel}:{record_id}", customer, customer is not None


def standardise_identifier(settings: Settings, kind: str, value: str) -> str:
    """The value as the pipeline stores it (email canonical, phone E.164, codes trimmed)."""
    if kind not in IDENTIFIERS:
        raise CdpError(f"unknown identifier kind '{kind}'; use one of {', '.join(IDENTIFIERS)}")
    if kind == "email":
        out = std.standardise_email(value)
    elif kind == "phone":
        out = std.standardise_phone(value, settings.default_region)
    else:
        out = std.standardise_code(value, kind)
    if not out:
        raise CdpError(f"the {kind} given is not a valid {kind} once standardised "
                       f"({mask_value(value, pii=True)}); nothing was added")
    return out


def add_override(settings: Settings, kind: str, first: str, second: str, *, author: str,
                 reason: str) -> StepSummary:
    """Add a must-link / cannot-link pair of records (or customer ids), or a shared
    identifier (`first` = identifier kind, `second` = value). Applies from the next run."""
    kind = CLI_KINDS.get(kind, kind)
    if kind not in KINDS:
        raise CdpError(f"unknown override kind '{kind}'; use must-link, cannot-link or shared")
    if not author.strip() or not reason.strip():
        raise CdpError("an override needs an --author and a --reason")
    summary = StepSummary(title="override add")
    with transaction(settings) as con:
        ensure_tables(con)
        row: dict[str, Any] = {"kind": kind, "author": author.strip(),
                               "reason": reason.strip(), "left_ref": None, "right_ref": None,
                               "identifier_kind": None, "identifier_value": None,
                               "left_customer_id": None, "right_customer_id": None}
        if kind in PAIR_KINDS:
            (left, left_c, left_ok), (right, right_c, right_ok) = (
                _resolve_ref(con, settings, first), _resolve_ref(con, settings, second))
            if left == right:
                raise CdpError(f"both sides are the same record ({left})")
            left, right, left_c, right_c, left_ok, right_ok = (
                (left, right, left_c, right_c, left_ok, right_ok) if left < right
                else (right, left, right_c, left_c, right_ok, left_ok))
            _check_conflicts(con, kind, left, right)
            row.update(left_ref=left, right_ref=right, left_customer_id=left_c,
                       right_customer_id=right_c)
            for ref, ok in ((left, left_ok), (right, right_ok)):
                if not ok:
                    summary.notes.append(f"{ref} is not in any customer yet (not ingested, or "
                                         "no usable identity data): the override applies once "
                                         "it is")
            if kind == "cannot_link" and left_c is not None and left_c == right_c:
                summary.notes.append(f"both records are in customer {left_c} now: the next "
                                     "`cdp resolve` splits it (logged as override_split)")
            if kind == "must_link" and left_c and right_c and left_c != right_c:
                summary.notes.append(f"customers {left_c} and {right_c} merge on the next "
                                     "`cdp resolve` (logged as override_merge)")
        else:
            id_kind = first.strip()
            value = standardise_identifier(settings, id_kind, second)
            duplicate = con.execute(f"""
                select override_id from {SCHEMA}.steward_overrides
                where active and kind = ? and identifier_kind = ? and identifier_value = ?""",
                                    [kind, id_kind, value]).fetchall()
            if duplicate:
                raise CdpError(f"that {id_kind} is already marked shared by {duplicate[0][0]}")
            row.update(identifier_kind=id_kind, identifier_value=value)
        next_number = con.execute(f"""
            select coalesce(max(cast(substr(override_id, 3) as bigint)), 0) + 1
            from {SCHEMA}.steward_overrides""").fetchall()[0][0]
        row["override_id"] = f"OV{next_number:06d}"
        row["created_at"] = utc_now()
        row["active"] = True
        columns = list(row)
        con.execute(f"insert into {SCHEMA}.steward_overrides ({', '.join(columns)}) values "
                    f"({', '.join('?' for _ in columns)})", [row[c] for c in columns])
    summary.add("override", row["override_id"])
    summary.add("kind", kind)
    summary.add("what", describe(row))
    summary.add("author", row["author"])
    summary.add("reason", row["reason"])
    summary.figures = {"override_id": row["override_id"], "kind": kind}
    return summary


def _check_conflicts(con: Any, kind: str, left: str, right: str) -> None:
    rows = con.execute(f"""
        select override_id, kind from {SCHEMA}.steward_overrides
        where active and kind in ('must_link', 'cannot_link')
          and left_ref = ? and right_ref = ?""", [left, right]).fetchall()
    for override_id, existing in rows:
        if existing == kind:
            raise CdpError(f"{override_id} already says {kind} for {left} and {right}")
        raise CdpError(f"{override_id} says {existing} for {left} and {right}: remove it first "
                       f"(`cdp override remove {override_id}`)")


def describe(row: dict[str, Any]) -> str:
    """One line, identifier values masked."""
    if row["kind"] == "shared_identifier":
        return (f"{row['identifier_kind']} {mask_value(row['identifier_value'], pii=True)} "
                "is shared: never merge on it")
    sign = "=" if row["kind"] == "must_link" else "≠"
    customers = [c for c in (row.get("left_customer_id"), row.get("right_customer_id")) if c]
    extra = f"  (given as / in {', '.join(customers)})" if customers else ""
    return f"{row['left_ref']} {sign} {row['right_ref']}{extra}"


def remove_override(settings: Settings, override_id: str, *, author: str) -> StepSummary:
    """Deactivate an override (its row stays, with who removed it and when). Applies from the
    next run: a removed cannot-link lets the records merge again if the evidence says so."""
    if not author.strip():
        raise CdpError("removing an override needs an --author")
    with transaction(settings) as con:
        ensure_tables(con)
        found = con.sql(f"select * from {SCHEMA}.steward_overrides where override_id = ?",
                        params=[override_id]).to_arrow_table().to_pylist()
        if not found:
            raise CdpError(f"no override {override_id} (see `cdp override list`)")
        if not found[0]["active"]:
            raise CdpError(f"{override_id} was already removed on {found[0]['removed_at']} by "
                           f"{found[0]['removed_by']}")
        con.execute(f"""update {SCHEMA}.steward_overrides
                        set active = false, removed_at = ?, removed_by = ?
                        where override_id = ?""", [utc_now(), author.strip(), override_id])
    summary = StepSummary(title="override remove")
    summary.add("override", override_id)
    summary.add("what", describe(found[0]))
    summary.add("removed by", author.strip())
    summary.notes.append("takes effect on the next `cdp resolve`")
    return summary


def list_overrides(settings: Settings, include_removed: bool = False) -> StepSummary:
    """Every active override (and the removed ones, when asked), identifier values masked."""
    summary = StepSummary(title="steward overrides")
    rows: list[dict[str, Any]] = []
    con = open_warehouse_if_any(settings)
    if con is not None:
        try:
            if has_table(con, "steward_overrides"):
                rows = con.sql(f"""
                    select * from {SCHEMA}.steward_overrides
                    where active or ? order by override_id""",
                               params=[include_removed]).to_arrow_table().to_pylist()
        finally:
            con.close()
    for row in rows:
        state = ("" if row["active"] else
                 f"; removed {row['removed_at']:%Y-%m-%d} by {row['removed_by']}")
        summary.add(row["override_id"],
                    f"{row['kind']}: {describe(row)} — {row['author']}: {row['reason']} "
                    f"({row['created_at']:%Y-%m-%d}){state}")
    if not rows:
        summary.notes.append("no overrides" + ("" if include_removed else " active"))
    summary.figures = {"overrides": [
        {**r, "identifier_value": mask_value(r["identifier_value"], pii=True)} for r in rows]}
    return summary


# --- applying overrides in a run ---------------------------------------------------------------


def shared_values(overrides: Sequence[dict[str, Any]]) -> pa.Table:
    """(kind, value) of the active shared-identifier overrides."""
    pairs = sorted({(o["identifier_kind"], o["identifier_value"]) for o in overrides
                    if o["kind"] == "shared_identifier"})
    return pa.table({"kind": pa.array([p[0] for p in pairs], pa.string()),
                     "value": pa.array([p[1] for p in pairs], pa.string())})


def apply_shared_identifiers(engine: Engine, overrides: Sequence[dict[str, Any]]) -> int:
    """After `classify_identifiers`: class every steward-shared value `shared` (junk stays junk)
    and drop its `+person` members, so no rule links on it. Working table `steward_shared`
    (used again to hide the values from Splink). Returns how many values were reclassified."""
    engine.from_arrow("steward_shared", shared_values(overrides))
    engine.create_table("identifier_classes_overridden", """
        select c.kind, c.value, c.records, c.people,
               case when s.value is not null and c.class <> 'junk' then 'shared'
                    else c.class end as class
        from identifier_classes c
        left join steward_shared s on s.kind = c.kind and s.value = c.value""",
                        single_use=True)
    changed = int(engine.scalar("""
        select count(*) from identifier_classes c
        join steward_shared s on s.kind = c.kind and s.value = c.value
        where c.class = 'personal'""") or 0)
    engine.create_table("identifier_classes", "select * from identifier_classes_overridden")
    engine.drop_table("identifier_classes_overridden")
    engine.create_table("shared_members_kept", """
        select m.* from shared_members m
        left join steward_shared s on s.kind = m.kind and s.value = m.value
        where s.value is null""", single_use=True)
    engine.create_table("shared_members", "select * from shared_members_kept")
    engine.drop_table("shared_members_kept")
    return changed


def hide_shared_sql(table: str) -> str:
    """`table` (match records) with steward-shared emails and phones hidden from Splink."""
    return f"""
        select m.record_key, m.first_key, m.first_canon, m.last_key, m.birth_date,
               case when se.value is null then m.email end as email,
               case when sp.value is null then m.phone end as phone,
               m.postcode, m.city_key, m.address_key, m.usable
        from {table} m
        left join steward_shared se on se.kind = 'email' and se.value = m.email
        left join steward_shared sp on sp.kind = 'phone' and sp.value = m.phone"""


def record_pairs(engine: Engine, overrides: Sequence[dict[str, Any]]
                 ) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """(kind, record key, record key, override id) of the must/cannot-link overrides whose two
    records are both in this run (`row_records`), and the ids of those that are not."""
    pairs = [o for o in overrides if o["kind"] in PAIR_KINDS]
    if not pairs:
        return [], []
    refs = {"override_id": [], "side": [], "source": [], "source_record_id": []}
    for o in pairs:
        for side, ref in ((0, o["left_ref"]), (1, o["right_ref"])):
            source, _, record_id = ref.partition(":")
            refs["override_id"].append(o["override_id"])
            refs["side"].append(side)
            refs["source"].append(source)
            refs["source_record_id"].append(record_id)
    engine.from_arrow("override_refs", pa.table(refs, schema=pa.schema([
        ("override_id", pa.string()), ("side", pa.int64()), ("source", pa.string()),
        ("source_record_id", pa.string())])))
    found = engine.to_arrow("""
        select o.override_id, o.side, r.record_key from override_refs o
        join row_records r on r.source = o.source and r.source_record_id = o.source_record_id""")
    keys: dict[tuple[str, int], str] = {
        (oid, side): key for oid, side, key in zip(
            *(found.column(c).to_pylist() for c in ("override_id", "side", "record_key")),
            strict=True)}
    engine.drop_table("override_refs")
    applied, missing = [], []
    for o in pairs:
        left, right = keys.get((o["override_id"], 0)), keys.get((o["override_id"], 1))
        if left is None or right is None:
            missing.append(o["override_id"])
        else:
            applied.append((o["kind"], left, right, o["override_id"]))
    return applied, missing
