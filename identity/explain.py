"""`cdp explain`: why two source records are (not) one customer; what makes up a customer.

Identifier values are always masked (`a***@gmail.com`, `+90*******67`): the output is for people
checking a decision, and it must be safe to paste into a ticket.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import duckdb

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary
from identity.cluster import GUARDS, Facts, GuardedClusters
from identity.model import MODEL_FILE, SPLINK_INPUT_COLUMNS
from identity.records import IDENTIFIERS
from identity.store import artefacts_dir, open_identity

MAX_LISTED = 50


def mask(kind: str, value: str | None) -> str | None:
    """A value recognisable to someone who knows it, useless to anyone who does not."""
    if value is None:
        return None
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if kind == "phone":
        return value[:3] + "*" * max(len(value) - 5, 3) + value[-2:]
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "***" + value[-2:]


def _parse_ref(ref: str) -> tuple[str, str]:
    channel, sep, record_id = ref.partition(":")
    if not sep or not channel or not record_id:
        raise CdpError(f"'{ref}' is not a record reference; expected channel:source_record_id")
    return channel, record_id


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict[str, Any]]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist()


def _find_record(con: duckdb.DuckDBPyConnection, settings: Settings, ref: str) -> dict[str, Any]:
    channel, record_id = _parse_ref(ref)
    settings.channel(channel)  # unknown channel -> clear error
    found = _dicts(con, """
        select r.* from identity.identity_clusters c
        join identity.identity_records r on r.record_key = c.record_key
        where c.source = ? and c.source_record_id = ?""", [channel, record_id])
    if not found:
        raise CdpError(
            f"record {ref} has no customer: it was not ingested, or it carries no usable "
            "identifier or name (unresolved records are counted in the resolve summary)")
    return found[0]


def _identifier_reasons(con: duckdb.DuckDBPyConnection, a: dict, b: dict) -> list[str]:
    reasons = []
    for kind in IDENTIFIERS:
        if a[kind] is not None and a[kind] == b[kind]:
            row = con.execute(
                "select class, people from identity.identity_identifiers "
                "where kind = ? and value = ?", [kind, a[kind]]).fetchall()
            row = row[0] if row else None
            cls, people = row if row else ("personal", 1)
            verdict = {
                "personal": "personal: links by rule",
                "shared": f"shared by {people} people: does not link on its own",
                "junk": "junk/placeholder: ignored",
            }.get(cls, cls)
            reasons.append(f"same {kind} {mask(kind, a[kind])} ({verdict})")
    return reasons


def model_score(settings: Settings, con: duckdb.DuckDBPyConnection, a: dict,
                b: dict) -> dict[str, Any] | None:
    """Splink's score for two identity records with the saved model: match weight, probability
    and each comparison's level and contribution (in bits). None when no model was saved."""
    from splink import DuckDBAPI, Linker

    model_path = artefacts_dir(settings) / MODEL_FILE
    if not model_path.exists():
        return None
    records = con.sql(f"""
        select {SPLINK_INPUT_COLUMNS}
        from identity.identity_records where status = 'resolved'""").to_arrow_table()
    local = duckdb.connect()
    try:
        local.register("records_for_tf", records)
        local.execute("create table splink_records as select * from records_for_tf")
        db_api = DuckDBAPI(local)
        linker = Linker(db_api.register("splink_records"), str(model_path),
                        log_level=logging.ERROR)
        for column in ("first_name", "last_name", "city"):
            linker.table_management.compute_tf_table(column)
        left, right = (
            _dicts(con, f"select {SPLINK_INPUT_COLUMNS} from identity.identity_records "
                        "where record_key = ?", [r["record_key"]])[0]
            for r in (a, b))
        scored = linker.inference.score_pair(left, right)
        row = scored.as_record_list()[0]
        parts = []
        for comparison in linker._settings_obj.comparisons:
            gamma = row[comparison._gamma_column_name]
            level = comparison._get_comparison_level_by_comparison_vector_value(gamma)
            name = comparison.output_column_name
            weight = (row.get(f"mw_{name}") or 0.0) + (row.get(f"mw_tf_adj_{name}") or 0.0)
            parts.append({"comparison": name, "level": level.label_for_charts,
                          "match_weight": round(weight, 2)})
        prior = row["match_weight"] - sum(p["match_weight"] for p in parts)
        return {"match_weight": round(row["match_weight"], 2),
                "match_probability": row["match_probability"],
                "prior_match_weight": round(prior, 2), "comparisons": parts}
    finally:
        local.close()


def explain_records(settings: Settings, ref_a: str, ref_b: str) -> StepSummary:
    """Whether two source records (`channel:source_record_id`) are linked and the same customer,
    and why: deterministic rule, Splink's match weight per comparison, or the guard that refused.
    """
    con = open_identity(settings)
    try:
        a, b = _find_record(con, settings, ref_a), _find_record(con, settings, ref_b)
        summary = StepSummary(title=f"explain {ref_a} vs {ref_b}")
        same = a["customer_id"] == b["customer_id"]
        summary.add("same customer", "yes" if same else "no")
        summary.add(f"customer of {ref_a}", a["customer_id"])
        summary.add(f"customer of {ref_b}", b["customer_id"])
        figures: dict[str, Any] = {"same_customer": same, "customers": [a["customer_id"],
                                                                          b["customer_id"]]}
        if a["record_key"] == b["record_key"]:
            summary.add("why", "same identity record: identical standardised identity fields")
            figures["reason"] = "same_record"
            summary.figures = figures
            return summary
        direct = _dicts(con, """
            select link_type, match_weight, match_probability, refused_by
            from identity.identity_links
            where (record_l = ? and record_r = ?) or (record_l = ? and record_r = ?)""",
                        [a["record_key"], b["record_key"], b["record_key"], a["record_key"]])
        figures["direct_links"] = direct
        summary.add("directly linked", ", ".join(
            d["link_type"] + (f" (refused by guard: {d['refused_by']})" if d["refused_by"]
                              else "") for d in direct) or "no")
        if same and any(d["refused_by"] for d in direct):
            summary.notes.append(
                "a guard refused this direct link when it was tried; the records met later "
                "through other links, once their customer showed compatible names/dates")
        reasons = _identifier_reasons(con, a, b)
        figures["identifiers"] = reasons
        for reason in reasons:
            summary.add("deterministic", reason)
        score = model_score(settings, con, a, b)
        figures["model"] = score
        if score:
            summary.add("Splink match weight",
                        f"{score['match_weight']:+.2f} (probability "
                        f"{score['match_probability']:.4f}; threshold "
                        f"{settings.identity.match_threshold})")
            summary.add("  prior (two random records match)",
                        f"{score['prior_match_weight']:+.2f}")
            for part in score["comparisons"]:
                summary.add(f"  {part['comparison']}",
                            f"{part['match_weight']:+.2f}  {part['level']}")
        guard = _guard_between_customers(con, a["customer_id"], b["customer_id"])
        figures["guard"] = guard
        if not same:
            summary.add("guard between the two customers", guard or "none objects")
            if a["name_only"] or b["name_only"]:
                summary.notes.append(
                    "a name-only record joins a customer only when all its links point to one")
        summary.figures = figures
        return summary
    finally:
        con.close()


def _guard_between_customers(con: duckdb.DuckDBPyConnection, c1: str, c2: str) -> str | None:
    """Which guard (if any) refuses merging two customers as they are now."""
    if c1 == c2:
        return None
    rows = _dicts(con, """
        select customer_id, first_key, last_key, birth_date, loyalty_id, login_id
        from identity.identity_records where customer_id in (?, ?)""", [c1, c2])
    facts = Facts(first_name=[r["first_key"] for r in rows],
                  last_name=[r["last_key"] for r in rows],
                  birth_date=[r["birth_date"] for r in rows],
                  loyalty_id=[r["loyalty_id"] for r in rows],
                  name_only=[False] * len(rows),
                  login_id=[r["login_id"] for r in rows])
    uf = GuardedClusters(facts, GUARDS)
    # Build each customer's cluster without guards, then ask whether the two may merge.
    first = {c1: None, c2: None}
    for i, r in enumerate(rows):
        if first[r["customer_id"]] is None:
            first[r["customer_id"]] = i
        else:
            a, b = uf.find(first[r["customer_id"]]), uf.find(i)
            if a != b:
                uf.union(a, b)
    if first[c1] is None or first[c2] is None:
        return None
    return uf.objection(uf.find(first[c1]), uf.find(first[c2]))


def explain_customer(settings: Settings, customer_id: str) -> StepSummary:
    """Every source record and identifier (masked) of one customer, and its golden profile with
    the source of each attribute."""
    con = open_identity(settings)
    try:
        golden = _dicts(con, "select * from identity.golden_profiles where customer_id = ?",
                        [customer_id])
        if not golden:
            raise CdpError(f"no customer {customer_id} in the warehouse")
        profile = golden[0]
        records = _dicts(con, """
            select source, source_record_id, record_key from identity.identity_clusters
            where customer_id = ? order by source, source_record_id""", [customer_id])
        identity_records = _dicts(con, """
            select * from identity.identity_records where customer_id = ?
            order by record_key""", [customer_id])
    finally:
        con.close()
    summary = StepSummary(title=f"customer {customer_id}")
    for attr in ("first_name", "last_name", "birth_date", "gender", "email", "phone", "address",
                 "city", "postcode", "country", "loyalty_id", "email_opt_in", "sms_opt_in",
                 "ads_opt_in"):
        value = profile.get(attr)
        if attr in ("email", "phone", "loyalty_id"):
            value = mask(attr, value)
        elif isinstance(value, date):
            value = value.isoformat()
        source = profile.get(f"{attr}_source")
        summary.add(attr, "-" if value is None else f"{value}  (from {source})")
    summary.add("channels", ", ".join(profile["channels"] or []))
    summary.add("source records", len(records))
    summary.add("identity records", len(identity_records))
    identifiers: dict[str, set[str]] = {k: set() for k in IDENTIFIERS}
    for record in identity_records:
        for kind in IDENTIFIERS:
            if record[kind]:
                identifiers[kind].add(mask(kind, record[kind]))
    for kind, values in identifiers.items():
        if values:
            summary.add(f"{kind}s", ", ".join(sorted(values)))
    # one line per identity record (identical identity fields within a channel), not per row:
    # a customer's thousand app events share one device and login
    for record in identity_records[:MAX_LISTED]:
        extra = record["n_rows"] - 1
        summary.add("identity record", record["record_key"] + (
            f"  (+{extra} more source record{'s' if extra > 1 else ''} alike)" if extra else ""))
    if len(identity_records) > MAX_LISTED:
        summary.notes.append(f"... and {len(identity_records) - MAX_LISTED} more identity "
                             "records; every source record is in figures['records']")
    summary.figures = {
        "customer_id": customer_id,
        "records": [(r["source"], r["source_record_id"]) for r in records],
        "identifiers": {k: sorted(v) for k, v in identifiers.items()},
        "golden": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in profile.items()
                   if k not in ("email", "phone", "loyalty_id", "emails", "phones",
                                "loyalty_ids")},
    }
    return summary


__all__ = ["explain_customer", "explain_records", "mask"]
