"""Identifier classification (cardinality guard) and deterministic links.

Every identifier value (email, phone, loyalty id, login id, device id) is classified by how many
clearly different people use it -- people told apart by first name and birth date
(`identity.guards.group_people`):

- `personal`: one person (or no way to tell): records sharing it are linked by rule;
- `shared`: 2..`max_people_per_identifier` people (a family email, a household landline): never
  links on its own -- only records that also show the same person (compatible name and birth
  date) are linked, and records that show nobody (no name, no birth date) are not; Splink still
  sees the value as one piece of evidence, and the clustering guards keep the family apart;
- `junk`: listed in `identity.junk_values`, or used by more than `max_people_per_identifier`
  people (a store's placeholder phone typed for every walk-in): removed before Splink blocking
  and never linked, so it cannot blow up the comparisons or merge strangers.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from cdp.config import Settings
from identity import standardise as std
from identity.engines.base import Engine
from identity.guards import group_people
from identity.records import IDENTIFIERS

# Order in which rule links are applied when clustering: the most specific identifier first;
# links on shared values, corroborated by the person's name and birth date, come after.
RULE_ORDER = ("loyalty_id", "login_id", "email", "phone", "device_id")
RULE_ORDER_ALL = RULE_ORDER + tuple(f"{k}+person" for k in RULE_ORDER)


def identifier_kinds(settings: Settings) -> list[str]:
    return [k for k in RULE_ORDER if k in settings.identity.identifiers and k in IDENTIFIERS]


def _standardised_junk(settings: Settings) -> pa.Table:
    kinds, values = [], []
    for kind, raw_values in settings.identity.junk_values.items():
        for raw in raw_values:
            if kind == "email":
                value = std.standardise_email(raw)
            elif kind == "phone":
                value = std.standardise_phone(raw, settings.default_region) or str(raw).strip()
            else:
                value = std.standardise_code(raw, kind) or str(raw).strip()
            if value:
                kinds.append(kind)
                values.append(value)
    return pa.table({"kind": pa.array(kinds, pa.string()), "value": pa.array(values, pa.string())})


def classify_identifiers(engine: Engine, settings: Settings) -> dict[str, dict[str, int]]:
    """Working tables `identifier_uses` and `identifier_classes`; returns counts per kind/class.

    `identifier_classes.people` is the number of different people counted, capped at
    `max_people_per_identifier + 1` (counting stops there), and null for listed junk values.
    """
    kinds = identifier_kinds(settings)
    if not kinds:
        engine.create_table("identifier_uses", """
            select cast(null as varchar) as kind, cast(null as varchar) as value,
                   record_key, first_key, last_key, birth_date from records where false""")
    else:
        engine.create_table("identifier_uses", " union all ".join(
            f"select cast('{k}' as varchar) as kind, {k} as value, record_key, first_key, "
            f"last_key, birth_date from records where {k} is not null" for k in kinds))
    signatures = engine.to_arrow("""
        with ambiguous as (
            -- one given name and at most one birth date among the users: one person, no
            -- need to count in Python
            select kind, value from identifier_uses group by kind, value
            having count(distinct first_key) > 1 or count(distinct birth_date) > 1)
        select distinct u.kind, u.value, u.first_key, u.last_key, u.birth_date
        from identifier_uses u join ambiguous a on a.kind = u.kind and a.value = u.value""")
    grouped: dict[tuple[str, str], list] = defaultdict(list)
    for kind, value, first, last, born in zip(
            *(signatures.column(c).to_pylist()
              for c in ("kind", "value", "first_key", "last_key", "birth_date")), strict=True):
        grouped[(kind, value)].append((first, last, born))
    junk = _standardised_junk(settings)
    listed = set(zip(junk.column("kind").to_pylist(), junk.column("value").to_pylist(),
                     strict=True))
    limit = settings.identity.max_people_per_identifier
    counted: list[tuple[str, str, int]] = []
    members: list[tuple] = []  # (kind, value, first, last, born, person) of shared values
    for (kind, value), sigs in grouped.items():
        if (kind, value) in listed:
            continue
        # grouping stops above the limit: beyond it every value is junk whatever the count
        persons = group_people(sigs, stop_above=limit)
        people = len({p for p in persons if p is not None})
        counted.append((kind, value, people))
        if 2 <= people <= limit:
            members += [(kind, value, *sig, person)
                        for sig, person in zip(sigs, persons, strict=True) if person is not None]
    engine.from_arrow("people_counts", pa.table({
        "kind": pa.array([c[0] for c in counted], pa.string()),
        "value": pa.array([c[1] for c in counted], pa.string()),
        "people": pa.array([c[2] for c in counted], pa.int64()),
    }))
    engine.from_arrow("shared_members", pa.table({
        "kind": pa.array([m[0] for m in members], pa.string()),
        "value": pa.array([m[1] for m in members], pa.string()),
        "first_key": pa.array([m[2] for m in members], pa.string()),
        "last_key": pa.array([m[3] for m in members], pa.string()),
        "birth_date": pa.array([m[4] for m in members], pa.date32()),
        "person": pa.array([m[5] for m in members], pa.int64()),
    }))
    engine.from_arrow("junk_list", junk)
    engine.create_table("identifier_classes", """
        select u.kind, u.value, count(*) as records,
               case when max(j.value) is null then coalesce(
                        max(p.people),
                        case when count(u.first_key) + count(u.birth_date) > 0 then 1 else 0 end)
               end as people,
               case when max(j.value) is not null then 'junk'
                    when max(p.people) > ? then 'junk'
                    when max(p.people) >= 2 then 'shared'
                    else 'personal' end as class
        from identifier_uses u
        left join people_counts p on p.kind = u.kind and p.value = u.value
        left join junk_list j on j.kind = u.kind and j.value = u.value
        group by u.kind, u.value""", [settings.identity.max_people_per_identifier])
    engine.drop_table("people_counts")
    engine.drop_table("junk_list")
    counts = engine.to_arrow(
        "select kind, class, count(*) as n from identifier_classes group by kind, class")
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, cls, n in zip(*(counts.column(c).to_pylist() for c in ("kind", "class", "n")),
                            strict=True):
        out[kind][cls] = n
    return dict(out)


def build_match_records(engine: Engine, settings: Settings) -> None:
    """Working table `match_records`: records with junk identifier values removed, and flags
    `usable` (has a usable identifier or a name) and `name_only` (a name and nothing else that
    tells people apart: no identifier, no birth date)."""
    kinds = identifier_kinds(settings)
    cleaned, joins = [], []
    for k in IDENTIFIERS:
        if k in kinds:
            cleaned.append(f"case when junk_{k}.value is null then r.{k} end as {k}")
            joins.append(f"""left join (select value from identifier_classes
                                        where kind = '{k}' and class = 'junk') as junk_{k}
                                   on junk_{k}.value = r.{k}""")
        else:
            cleaned.append(f"cast(null as varchar) as {k}")
    others = ["record_key", "source", "n_rows", "first_seen_at", "last_seen_at", "first_name",
              "last_name", "first_key", "first_canon", "last_key", "birth_date", "gender",
              "address", "address_key", "city", "city_key", "postcode", "country", "name_swapped"]
    engine.create_table("match_records_base", f"""
        select {", ".join(f"r.{c}" for c in others)}, {", ".join(cleaned)}
        from records r
        {" ".join(joins)}""", single_use=True)
    any_id = " or ".join(f"{k} is not null" for k in IDENTIFIERS)
    engine.create_table("match_records", f"""
        select *,
               ({any_id}) or first_key is not null or last_key is not null as usable,
               not ({any_id}) and birth_date is null
                 and (first_key is not null or last_key is not null) as name_only
        from match_records_base""")
    engine.drop_table("match_records_base")


def build_rule_links(engine: Engine) -> None:
    """Working table `rule_links`: records sharing a personal identifier value, as a star from
    the smallest record key of each value (enough for connected components); and records sharing
    a shared value whose names and birth dates say they are the same one of its people (link type
    `<kind>+person`, e.g. the mother's two orders with the family email). Records of a shared
    value that do not show who they are (no name, no birth date) are not linked by rule."""
    engine.create_table("rule_links", """
        with uses as (
            select u.kind as link_type, u.kind, u.value, u.record_key
            from identifier_uses u
            join identifier_classes c on c.kind = u.kind and c.value = u.value
            where c.class = 'personal'
            union all
            select u.kind || '+person', u.kind, u.value || chr(31) || cast(m.person as varchar),
                   u.record_key
            from identifier_uses u
            join shared_members m
              on m.kind = u.kind and m.value = u.value
             and m.first_key is not distinct from u.first_key
             and m.last_key is not distinct from u.last_key
             and m.birth_date is not distinct from u.birth_date)
        select link_type, record_l, record_r from (
            select link_type, record_key as record_r,
                   min(record_key) over (partition by link_type, value) as record_l
            from uses) as t
        where record_l <> record_r""")
