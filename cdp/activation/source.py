"""What activation reads from the warehouse: segment members, their profiles, consent, erasures.

The one place that knows the dbt output's table and column names; adapt them here.

Contract (dbt marts, default schema):
  segment_membership(segment, customer_id, since)
  dim_customers(customer_id, first_name, last_name, email, phone, birth_date, gender, city,
                postcode, country, email_opt_in, sms_opt_in, ads_opt_in)   null opt-in = no
  identity.erased_customers(customer_id, erased_at)   optional: absent = nobody erased
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from cdp.errors import CdpError

MEMBERSHIP = ("main", "segment_membership")
PROFILES = ("main", "dim_customers")
ERASED = ("identity", "erased_customers")

# Canonical name -> column in PROFILES. Change the right-hand side if the model renames one.
PROFILE_COLUMNS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "birth_date": "birth_date",
    "gender": "gender",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
    "email_opt_in": "email_opt_in",
    "sms_opt_in": "sms_opt_in",
    "ads_opt_in": "ads_opt_in",
}
# A destination's consent purpose -> the profile flag (canonical name) that grants it.
CONSENT = {"ads": "ads_opt_in", "email": "email_opt_in", "sms": "sms_opt_in"}
MEMBER_COLUMNS = ("segment", "customer_id", "since")

# Member status, decided before any payload is built.
ELIGIBLE = "eligible"
NO_PROFILE = "no_profile"
NO_CONSENT = "no_consent"
ERASED_STATUS = "erased"


# At least one identifier an ad platform can match on: a valid (or already hashed) email or
# phone, or a full name with postcode and country. The best available proxy for match rate.
# (Cheap tests, no regular expressions: this runs over every member.)
MATCHABLE = """(p.customer_id is not null and (
    p.{email} like '%_@_%._%' or length(p.{email}) = 64 or length(p.{phone}) >= 8
    or (length(p.{first_name}) > 0 and length(p.{last_name}) > 0
        and length(p.{postcode}) > 0 and length(p.{country}) = 2)))"""


def _q(*parts: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ?", [schema, table]).fetchall()[0]
    return bool(row and row[0])


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ?", [schema, table]).fetchall()
    return {r[0] for r in rows}


class Source:
    """Reads members, profiles and erasures through one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        for schema, table in (MEMBERSHIP, PROFILES):
            if not _exists(con, schema, table):
                raise CdpError(f"warehouse table {schema}.{table} not found: run `cdp build` "
                               "before `cdp sync`")
        self._check_columns(MEMBERSHIP, MEMBER_COLUMNS)
        self._check_columns(PROFILES, ("customer_id", *PROFILE_COLUMNS.values()))
        self.has_erasures = _exists(con, *ERASED)

    def _check_columns(self, table: tuple[str, str], needed: tuple[str, ...]) -> None:
        missing = sorted(set(needed) - _columns(self.con, *table))
        if missing:
            raise CdpError(f"warehouse table {'.'.join(table)} lacks columns {missing} "
                           "(activation/source.py maps them)")

    def segments(self) -> list[str]:
        rows = self.con.execute(
            f"select distinct segment from {_q(*MEMBERSHIP)} order by 1").fetchall()
        return [r[0] for r in rows]

    def membership_rows(self) -> int:
        row = self.con.execute(f"select count(*) from {_q(*MEMBERSHIP)}").fetchall()[0]
        return int(row[0]) if row else 0

    def erased_sql(self) -> str:
        """A query listing erased customer ids (empty when the table does not exist)."""
        if not self.has_erasures:
            return "select cast(null as varchar) as customer_id where false"
        return f"select distinct customer_id from {_q(*ERASED)} where customer_id is not null"

    def members(self, segment: str, purpose: str) -> pa.Table:
        """One row per member of `segment`: customer_id, since, status and profile fields.

        status: eligible | no_profile (not in dim_customers) | erased | no_consent (the
        destination's purpose flag is not true; null counts as no consent).
        """
        consent = (f"coalesce(p.{_q(PROFILE_COLUMNS[CONSENT[purpose]])}, false)"
                   if purpose in CONSENT else "true")
        matchable = MATCHABLE.format(**{name: _q(column)
                                        for name, column in PROFILE_COLUMNS.items()})
        # Dates as ISO text: hashed once per distinct value, strings are cheaper than dates.
        fields = ", ".join(
            f"cast(p.{_q(column)} as varchar) as {_q(name)}" if name == "birth_date"
            else f"p.{_q(column)} as {_q(name)}"
            for name, column in PROFILE_COLUMNS.items())
        sql = f"""
            with m as (
                select customer_id, min(since) as since
                from {_q(*MEMBERSHIP)}
                where segment = ? and customer_id is not null
                group by customer_id
            ),
            erased as ({self.erased_sql()})
            select
                m.customer_id,
                cast(m.since as varchar) as since,
                case
                    when erased.customer_id is not null then '{ERASED_STATUS}'
                    when p.customer_id is null then '{NO_PROFILE}'
                    when not {consent} then '{NO_CONSENT}'
                    else '{ELIGIBLE}'
                end as status,
                {fields},
                {matchable} as matchable
            from m
            left join {_q(*PROFILES)} as p on p.customer_id = m.customer_id
            left join erased on erased.customer_id = m.customer_id
        """
        return self.con.sql(sql, params=[segment]).to_arrow_table()
