"""Segments for the explorer: definition, size, consent-eligible size per destination, size over
time, a sample of members, the last sync per destination, and the CSV export.

Eligibility is decided by activation's own reader (`cdp.activation.source.Source.members`), so the
numbers here are the ones `cdp sync` would send: consent for the destination's purpose, not
erased, with a profile.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cdp.activation.config import load_activation_config
from cdp.activation.source import ELIGIBLE, Source
from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates.masking import mask_value
from cdp.web.db import Reader

SAMPLE_SIZE = 25
EXPORT_COLUMNS = ("customer_id", "first_name", "last_name", "email", "phone", "city",
                  "postcode", "country", "since", "email_opt_in", "sms_opt_in", "ads_opt_in")
PII_COLUMNS = {"first_name", "last_name", "email", "phone", "postcode"}
# A spreadsheet runs a cell starting with these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class UnknownSegment(CdpError):
    """No segment of that name in the warehouse."""


def segment_names(reader: Reader) -> list[str]:
    """Segments with members now or a size history (a segment that emptied still shows)."""
    if not reader.has("main", "segment_membership"):
        return []
    history = ("union select distinct segment from segment_size_history"
               if reader.has("main", "segment_size_history") else "")
    return [r["segment"] for r in reader.rows(
        f"select distinct segment from segment_membership {history} order by 1")]


def destinations_for(settings: Settings, segment: str) -> list[Any]:
    """The configured destinations that sync this segment (same rule as `cdp sync`)."""
    out = []
    for destination in load_activation_config(settings).destinations.values():
        names = destination.segments if destination.segments is not None else (
            destination.mapped_segments())
        if names is None or segment in names:
            out.append(destination)
    return out


def definition(settings: Settings, segment: str) -> dict[str, Any]:
    """The segment's dbt model: description, activation channel (YAML meta) and SQL."""
    if not _SEGMENT_NAME.match(segment):
        return {}
    models = settings.dbt_project_dir / "models"
    out: dict[str, Any] = {}
    for path in sorted(models.rglob(f"segment_{segment}.yml")):
        doc = _yaml(str(path), path.stat().st_mtime_ns)
        for model in doc.get("models") or []:
            if model.get("name") == f"segment_{segment}":
                out["description"] = " ".join(str(model.get("description") or "").split())
                meta = (model.get("config") or {}).get("meta") or model.get("meta") or {}
                out["activation_channel"] = meta.get("activation_channel")
    for path in sorted(models.rglob(f"segment_{segment}.sql")):
        out["sql"] = path.read_text(encoding="utf-8")
        out["sql_path"] = str(Path(path).relative_to(settings.dbt_project_dir))
    return out


@lru_cache(maxsize=256)
def _yaml(path: str, mtime_ns: int) -> dict[str, Any]:
    """A model YAML file, parsed once per version (the mtime is part of the cache key)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader) or {}


def eligible_counts(source: Source, segment: str, purpose: str) -> dict[str, int]:
    """Members by activation status (eligible, no_consent, erased, no_profile)."""
    statuses = source.members(segment, purpose).column("status").to_pylist()
    return dict(Counter(statuses))


def _last_syncs(reader: Reader) -> dict[tuple[str, str], dict[str, Any]]:
    if not reader.has("activation", "sync_runs"):
        return {}
    rows = reader.rows("""
        select * exclude (rn) from (
            select r.*, row_number() over (partition by destination, segment
                                           order by started_at desc, run_id desc) as rn
            from activation.sync_runs r) where rn = 1""")
    return {(r["destination"], r["segment"]): r for r in rows}


def overview(settings: Settings, reader: Reader) -> dict[str, Any]:
    """Every segment: size, channel, description, eligible members and last sync per
    destination."""
    names = segment_names(reader)
    destinations = list(load_activation_config(settings).destinations.values())
    sizes = {r["segment"]: r for r in reader.rows("""
        select segment, count(distinct customer_id) as size, any_value(activation_channel)
               as activation_channel, max(as_of_date) as as_of_date
        from segment_membership group by segment""")} if names else {}
    syncs = _last_syncs(reader)
    source = Source(reader.con) if names else None
    rows = []
    for name in names:
        info = sizes.get(name, {})
        per_destination = {}
        for destination in destinations_for(settings, name):
            counts = eligible_counts(source, name, destination.purpose) if source else {}
            per_destination[destination.name] = {
                "eligible": counts.get(ELIGIBLE, 0),
                "last_sync": syncs.get((destination.name, name)),
            }
        rows.append({"name": name, "size": info.get("size", 0),
                     "activation_channel": info.get("activation_channel"),
                     "as_of_date": info.get("as_of_date"),
                     "description": definition(settings, name).get("description", ""),
                     "destinations": per_destination})
    return {"segments": rows, "destinations": [d.name for d in destinations]}


def detail(settings: Settings, reader: Reader, segment: str) -> dict[str, Any]:
    """One segment: definition, size, eligibility per destination and per consent purpose,
    size over time, a sample of members (raw: the caller masks), last sync per destination."""
    if segment not in segment_names(reader):
        raise UnknownSegment(f"no segment '{segment}' in the warehouse")
    source = Source(reader.con)
    channel = reader.scalar(
        "select any_value(activation_channel) from segment_membership where segment = ?",
        [segment])
    size = int(reader.scalar(
        "select count(distinct customer_id) from segment_membership where segment = ?",
        [segment]) or 0)
    syncs = _last_syncs(reader)
    per_destination = []
    for destination in destinations_for(settings, segment):
        counts = eligible_counts(source, segment, destination.purpose)
        per_destination.append({
            "name": destination.name, "type": destination.type,
            "purpose": destination.purpose, "counts": counts,
            "eligible": counts.get(ELIGIBLE, 0),
            "last_sync": syncs.get((destination.name, segment)),
        })
    per_purpose = {purpose: eligible_counts(source, segment, purpose).get(ELIGIBLE, 0)
                   for purpose in ("email", "sms", "ads")}
    history = (reader.rows("""
        select day, size, entered, exited from segment_size_history where segment = ?
        order by day""", [segment]) if reader.has("main", "segment_size_history") else [])
    erased = ("and m.customer_id not in (select customer_id from identity.erased_customers)"
              if reader.has("identity", "erased_customers") else "")
    sample = reader.rows(f"""
        select m.customer_id, m.since, p.first_name, p.last_name, p.email, p.phone, p.city,
               p.email_opt_in, p.sms_opt_in, p.ads_opt_in
        from segment_membership m left join dim_customers p using (customer_id)
        where m.segment = ? {erased}
        order by m.since desc, m.customer_id limit ?""", [segment, SAMPLE_SIZE])
    return {"name": segment, "activation_channel": channel, "size": size,
            "definition": definition(settings, segment), "destinations": per_destination,
            "per_purpose": per_purpose, "history": history, "sample": sample}


def export_csv(reader: Reader, segment: str, masked: bool = False) -> tuple[str, int]:
    """The segment's members who may be contacted for its activation channel (consent for that
    purpose, not erased, with a profile) as CSV text with their contact fields, and the row count.

    `masked` masks the personal columns, for a list to share rather than to use."""
    if segment not in segment_names(reader):
        raise UnknownSegment(f"no segment '{segment}' in the warehouse")
    purpose = reader.scalar(
        "select any_value(activation_channel) from segment_membership where segment = ?",
        [segment]) or "none"
    members = Source(reader.con).members(segment, purpose).to_pylist()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    for member in sorted(members, key=lambda m: m["customer_id"]):
        if member["status"] != ELIGIBLE:
            continue
        writer.writerow([_cell(column, member.get(column), masked) for column in EXPORT_COLUMNS])
        rows += 1
    return out.getvalue(), rows


def _cell(column: str, value: Any, masked: bool) -> Any:
    if value is None:
        return ""
    if masked and column in PII_COLUMNS:
        value = mask_value(value, pii=True)
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not (
            column == "phone" and value[1:].replace("*", "").isdigit()):
        return "'" + value  # E.164 phones ("+90...") are the one safe leading "+"
    return value
