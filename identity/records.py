"""Raw lake -> standardised source rows -> collapsed identity records.

1. `load_source_rows`: every channel's raw Parquet, latest version of each primary key, identity
   fields renamed to canonical names (all text; standardisation decides what they mean).
2. `standardise_rows`: each distinct raw value goes through `identity.standardise` once; first and
   last names swapped in a record are put back using the dataset's own name statistics.
3. `collapse_records`: rows of one channel with the same standardised identity payload become
   one identity record (app events repeat one device and login thousands of times), keyed
   `channel:smallest source record id`, with a map from every source row to its record.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from cdp.config import CANONICAL_FIELDS, Settings
from cdp.errors import CdpError
from cdp.lake import committed_raw_files, raw_dir
from identity import standardise as std
from identity.engines.base import Engine
from identity.nicknames import canonical_first_name
from identity.text import fold, is_turkish

# Fields that make up an identity record's payload (consent flags are row attributes, not
# identity: a changed opt-in must not create a new identity record).
PAYLOAD = ("first_name", "last_name", "birth_date", "gender", "email", "phone", "address_key",
           "city_key", "postcode", "country", "loyalty_id", "login_id", "device_id")
IDENTIFIERS = ("email", "phone", "loyalty_id", "login_id", "device_id")
CONSENTS = ("email_opt_in", "sms_opt_in", "ads_opt_in")


@dataclass
class LoadReport:
    rows_per_channel: dict[str, int] = field(default_factory=dict)
    channels_without_data: list[str] = field(default_factory=list)
    # mapped columns found in no raw file of their channel (read as empty), "channel.column"
    missing_columns: list[str] = field(default_factory=list)
    batches_read: dict[str, str] = field(default_factory=dict)  # batch id -> channel


def _q(identifier: str) -> str:
    """Quote an identifier that comes from configuration."""
    return '"' + identifier.replace('"', '""') + '"'


def load_source_rows(engine: Engine, settings: Settings,
                     batches: Collection[str] | None = None) -> LoadReport:
    """Working table `source_rows`: one row per source record (latest `_ingested_at` wins).
    With `batches` (ids of committed batches the caller read from the load log: all of them
    in a full run, the new ones in an incremental run), only their raw files are read;
    without, each channel's committed batches are looked up in the load log."""
    report = LoadReport()
    selects: list[str] = []
    params: list[str] = []
    for name, channel in settings.channels.items():
        if not channel.identity:
            continue
        if batches is None:
            files = committed_raw_files(settings, name)
        else:  # batches the caller found committed: no need to read the load log again
            files = sorted(p for p in raw_dir(settings, name).glob("*/*.parquet")
                           if p.stem in batches)
        report.batches_read.update({f.stem: name for f in files})
        if not files:
            report.channels_without_data.append(name)
            continue
        view = f"raw_{len(selects)}"
        engine.register_parquet(view, files)
        present = set(engine.columns(view))
        lineage = {"_ingested_at", "_batch_id", "_row_number"}
        if channel.primary_key not in present or not lineage <= present:
            raise CdpError(f"raw files of channel '{name}' lack the primary key "
                           f"'{channel.primary_key}' or lineage columns; re-run `cdp ingest`")
        mapped = {f: c for f, c in channel.identity.items() if c in present}
        report.missing_columns += [f"{name}.{c}" for c in channel.identity.values()
                                   if c not in present]
        event = (_q(channel.event_time) if channel.event_time in present
                 else '"_ingested_at"')
        fields = ", ".join(
            f"cast({_q(mapped[f])} as varchar) as {f}_raw" if f in mapped
            else f"cast(null as varchar) as {f}_raw"
            for f in CANONICAL_FIELDS
        )
        pk = _q(channel.primary_key)
        selects.append(f"""
            select cast(? as varchar) as source, cast({pk} as varchar) as source_record_id,
                   cast({event} as timestamp) as event_at, {fields}
            from (select *, row_number() over (
                      partition by {pk}
                      order by "_ingested_at" desc, "_batch_id" desc, "_row_number" desc) as _rn
                  from "{view}") as t
            where _rn = 1 and {pk} is not null""")
        params.append(name)
    if not selects:
        raise CdpError(
            f"no ingested data under {settings.resolved_paths.raw}: run `cdp ingest` first")
    engine.create_table("source_rows", " union all ".join(selects), params)
    counts = engine.to_arrow("select source, count(*) as n from source_rows group by source")
    report.rows_per_channel = dict(zip(counts.column("source").to_pylist(),
                                       counts.column("n").to_pylist(), strict=True))
    return report


def standardise_rows(engine: Engine, settings: Settings, today: date | None = None) -> None:
    """Working table `rows`: `source_rows` with every identity field standardised.

    Every distinct raw value of every field goes through its standardiser in one pass (working
    table `value_map`: kind, raw inputs a/b/c, outputs): one query and one Python pass rather
    than one per field (on Spark: one job rather than seventeen)."""
    turkish = is_turkish(settings.locale)
    region = settings.default_region
    standardisers = _standardisers(turkish, region, today,
                                   dayfirst=not settings.locale.lower().endswith("_us"))
    # names keep their null inputs (a record may have only some of the three fields) and match
    # them with `is not distinct from`; a null single value standardises to null, so it is left
    # out and its join finds nothing. No distinct per field: map_distinct takes one over all of
    # them (on Spark each distinct is a shuffle of its own)
    inputs = ["""select 'names' as kind, first_name_raw as a, last_name_raw as b,
                        full_name_raw as c from source_rows"""]
    inputs += [f"""select '{kind}', {kind}_raw, cast(null as varchar), cast(null as varchar)
                   from source_rows where {kind}_raw is not null"""
               for kind in _SINGLE_VALUED]
    # a postcode's shape depends on its record's country (the default region when none)
    inputs.append("""select 'postcode', postcode_raw, country_raw, cast(null as varchar)
                     from source_rows where postcode_raw is not null""")

    def standardise(kind: str, a: str | None, b: str | None, c: str | None) -> tuple:
        return standardisers[kind](a, b, c)

    engine.map_distinct("value_map", " union all ".join(inputs), ["kind", "a", "b", "c"],
                        standardise, _VALUE_MAP_OUTPUTS)
    single = [f for f in _SINGLE_VALUED if f not in ("city", "address")]  # one output each
    joins = "\n".join(
        f"left join value_map m_{f} on m_{f}.kind = '{f}' and m_{f}.a = s.{f}_raw"
        for f in _SINGLE_VALUED)
    engine.create_table("rows_std", f"""
        select s.source, s.source_record_id, s.event_at,
               n.t1 as first_name_in, n.t2 as last_name_in,
               {", ".join(f"m_{f}.{_OUTPUT_OF[f]} as {f}" for f in single)},
               pc.t1 as postcode, m_city.t1 as city, m_city.t2 as city_key,
               m_address.t1 as address, m_address.t2 as address_key
        from source_rows s
        left join value_map n
          on n.kind = 'names'
         and n.a is not distinct from s.first_name_raw
         and n.b is not distinct from s.last_name_raw
         and n.c is not distinct from s.full_name_raw
        {joins}
        left join value_map pc on pc.kind = 'postcode' and pc.a = s.postcode_raw
              and pc.b is not distinct from s.country_raw
    """)
    _unswap_names(engine, turkish)
    engine.drop_table("value_map")


# Fields standardised from their own raw value alone, and the value_map output holding each.
_SINGLE_VALUED = ("email", "phone", "birth_date", "country", "city", "address", "gender",
                  "loyalty_id", "login_id", "device_id", *CONSENTS)
_OUTPUT_OF = {f: "day" if f == "birth_date" else "flag" if f in CONSENTS else "t1"
              for f in _SINGLE_VALUED}
# value_map's outputs: two texts (a value and its key, or first and last name), a date, a flag
_VALUE_MAP_OUTPUTS = pa.schema([("t1", pa.string()), ("t2", pa.string()),
                                ("day", pa.date32()), ("flag", pa.bool_())])


def _standardisers(turkish: bool, region: str, today: date | None,
                   dayfirst: bool) -> dict[str, Callable[..., tuple]]:
    """kind -> function of value_map's inputs (a, b, c) giving its outputs (t1, t2, day, flag)."""

    def text(fn: Callable[[str | None], str | None]) -> Callable[..., tuple]:
        return lambda a, b, c: (fn(a), None, None, None)

    def names(first: str | None, last: str | None, full: str | None) -> tuple:
        name = std.standardise_name(first, last, full, turkish)
        return name.first, name.last, None, None

    def postcode(raw: str | None, country_raw: str | None, _: None) -> tuple:
        country = std.standardise_country(country_raw)
        return std.standardise_postcode(raw, region if country is None else country), \
            None, None, None

    out: dict[str, Callable[..., tuple]] = {
        "names": names, "postcode": postcode,
        "email": text(std.standardise_email),
        "phone": text(lambda v: std.standardise_phone(v, region)),
        "birth_date": lambda a, b, c: (None, None,
                                       std.standardise_birth_date(a, today, dayfirst), None),
        "country": text(std.standardise_country),
        "city": lambda a, b, c: (*std.standardise_city(a, turkish), None, None),
        "address": lambda a, b, c: (*std.standardise_address(a, turkish), None, None),
        "gender": text(std.standardise_gender),
    }
    for kind in ("loyalty_id", "login_id", "device_id"):
        out[kind] = text(lambda v, k=kind: std.standardise_code(v, k))
    for consent in CONSENTS:
        out[consent] = lambda a, b, c: (None, None, None, std.standardise_bool(a))
    return out


# A token is taken as a surname written in the first-name field when the dataset uses it as a
# surname this many times more often than as a first name (and vice versa for the other field).
SWAP_RATIO = 3
SWAP_MIN_EVIDENCE = 2


def _unswap_names(engine: Engine, turkish: bool) -> None:
    """Working table `rows`: first/last names put back where a record has them swapped.

    Which tokens are first names and which are surnames is learnt from the data itself (how often
    each folded token appears in each role), so it works for any language.
    """
    pairs = engine.to_arrow("""
        select first_name_in as f, last_name_in as l, count(*) as n from rows_std
        where first_name_in is not null and last_name_in is not null group by 1, 2""")
    as_first: dict[str, int] = {}
    as_last: dict[str, int] = {}
    rows = list(zip(pairs.column("f").to_pylist(), pairs.column("l").to_pylist(), strict=True))
    for first, last in rows:
        # count distinct name pairs, not rows, so one busy customer cannot skew the roles
        for token in (fold(first, turkish) or "").split():
            as_first[token] = as_first.get(token, 0) + 1
        for token in (fold(last, turkish) or "").split():
            as_last[token] = as_last.get(token, 0) + 1

    def looks_like_surname(token: str) -> bool:
        last, first = as_last.get(token, 0), as_first.get(token, 0)
        return last >= SWAP_MIN_EVIDENCE and last >= SWAP_RATIO * max(first, 1)

    def looks_like_first(token: str) -> bool:
        last, first = as_last.get(token, 0), as_first.get(token, 0)
        return first >= SWAP_MIN_EVIDENCE and first >= SWAP_RATIO * max(last, 1)

    swapped = []
    for first, last in rows:
        f_tokens = (fold(first, turkish) or "").split()
        l_tokens = (fold(last, turkish) or "").split()
        if (f_tokens and l_tokens and all(looks_like_surname(t) for t in f_tokens)
                and looks_like_first(l_tokens[0])):
            swapped.append((first, last))
    engine.from_arrow("swapped_names", pa.table({
        "f": pa.array([s[0] for s in swapped], pa.string()),
        "l": pa.array([s[1] for s in swapped], pa.string()),
    }))
    keep = ["source", "source_record_id", "event_at", "email", "phone", "birth_date", "country",
            "gender", "loyalty_id", "login_id", "device_id", *CONSENTS, "postcode", "city",
            "city_key", "address", "address_key"]
    engine.create_table("rows", f"""
        select {", ".join(f"r.{c}" for c in keep)},
               case when w.f is null then r.first_name_in else r.last_name_in end as first_name,
               case when w.f is null then r.last_name_in else r.first_name_in end as last_name,
               w.f is not null as name_swapped
        from rows_std r
        left join swapped_names w on w.f = r.first_name_in and w.l = r.last_name_in""",
                        single_use=True)
    engine.drop_table("rows_std")
    engine.drop_table("swapped_names")


def collapse_records(engine: Engine, settings: Settings) -> None:
    """Working tables `row_records` (source row -> record) and `records` (one per payload)."""
    turkish = is_turkish(settings.locale)
    # One fingerprint per (channel, payload); chr(0) marks a null so null and "" differ.
    parts = ", ".join(f"coalesce(cast({c} as varchar), chr(0))" for c in ("source", *PAYLOAD))
    engine.create_table("rows_keyed", f"""
        select *, md5(concat_ws(chr(31), {parts})) as payload_hash from rows""")
    engine.drop_table("rows")
    engine.create_table("records_base", f"""
        select payload_hash, min(source) || ':' || min(source_record_id) as record_key,
               min(source) as source, count(*) as n_rows,
               min(event_at) as first_seen_at, max(event_at) as last_seen_at,
               {", ".join(f"min({c}) as {c}" for c in PAYLOAD)},
               min(address) as address, min(city) as city, bool_or(name_swapped) as name_swapped
        from rows_keyed group by payload_hash""")
    names = engine.to_arrow(
        "select distinct first_name, last_name from records_base "
        "where first_name is not null or last_name is not null")
    firsts = names.column("first_name").to_pylist()
    lasts = names.column("last_name").to_pylist()
    first_keys = [fold(f, turkish) for f in firsts]
    engine.from_arrow("name_keys", pa.table({
        "first_name": pa.array(firsts, pa.string()),
        "last_name": pa.array(lasts, pa.string()),
        "first_key": pa.array(first_keys, pa.string()),
        "first_canon": pa.array([canonical_first_name(k) for k in first_keys], pa.string()),
        "last_key": pa.array([fold(v, turkish) for v in lasts], pa.string()),
    }))
    base = ["record_key", "source", "n_rows", "first_seen_at", "last_seen_at", *PAYLOAD,
            "address", "city", "name_swapped"]
    engine.create_table("records", f"""
        select {", ".join(f"b.{c}" for c in base)}, k.first_key, k.first_canon, k.last_key
        from records_base b
        left join name_keys k on k.first_name is not distinct from b.first_name
                             and k.last_name is not distinct from b.last_name""")
    engine.create_table("row_records", f"""
        select r.source, r.source_record_id, r.event_at, {", ".join(f"r.{c}" for c in CONSENTS)},
               b.record_key
        from rows_keyed r join records_base b on b.payload_hash = r.payload_hash""")
    engine.drop_table("records_base")
    engine.drop_table("name_keys")
    engine.drop_table("rows_keyed")
