"""Finding a customer from what a person types: an email, a phone, a name, a loyalty card, a
customer id or a source record id (order number, ticket id...).

The input goes through the identity pipeline's own standardisers (`identity.standardise`), so it
meets the stored values whatever its spelling: `0532 123 45 67`, `+90 (532) 123-4567` and
`905321234567` all find `+905321234567`; `A.Yilmaz+shop@GMAIL.com` finds `ayilmaz@gmail.com`;
`AYŞE YILMAZ` finds Ayşe Yılmaz (folded name keys, nicknames, swapped first/last names).
A masked value copied from a list (`a***@gmail.com`, `+90532*****67`) finds the customers it
could stand for. Every reading of the input that makes sense is tried, and the results say
which one matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdp.config import Settings
from cdp.gates.masking import mask_value
from cdp.web.db import Reader
from identity import standardise as std
from identity.nicknames import canonical_first_name
from identity.text import clean, fold, is_turkish

MAX_RESULTS = 50
_LETTERS = re.compile(r"[^\W\d_]")
_DIGITS = re.compile(r"\d")
_MASKED_PHONE = re.compile(r"^(\+?\d+)(\*+)(\d+)$")
CODE_KINDS = ("loyalty_id", "login_id", "device_id")


@dataclass
class Query:
    """The readings of one search input, each already in the pipeline's canonical form."""

    text: str
    email: str | None = None
    phone: str | None = None
    codes: dict[str, str] = field(default_factory=dict)  # loyalty_id / login_id / device_id
    first_key: str | None = None
    last_key: str | None = None
    first_canon: str | None = None
    # a masked email or phone as lists show it: (kind, prefix, suffix, length or None)
    masked: tuple[str, str, str, int | None] | None = None

    @property
    def empty(self) -> bool:
        return not self.text

    def readings(self) -> list[str]:
        """What the input was read as, masked (it is shown back on the page)."""
        out = []
        if self.masked:
            return [f"masked {self.masked[0]} {self.text}"]
        if self.email:
            out.append(f"email {mask_value(self.email, pii=True)}")
        if self.phone:
            out.append(f"phone {mask_value(self.phone, pii=True)}")
        if self.first_key or self.last_key:
            out.append("name")
        out += [kind.replace("_", " ") for kind in self.codes]
        if " " not in self.text:
            out.append("customer or record id")
        return out


def interpret(settings: Settings, text: str | None) -> Query:
    """Every sensible reading of `text`, standardised exactly as the identity pipeline does."""
    raw = clean(text) or ""
    query = Query(text=raw[:200])
    if not query.text:
        return query
    raw = query.text
    if "*" in raw:
        query.masked = _masked(raw)
        return query
    if "@" in raw:
        query.email = std.standardise_email(raw)
        return query
    digits = len(_DIGITS.findall(raw))
    letters = bool(_LETTERS.search(raw))
    if digits >= 7 and not letters:
        query.phone = std.standardise_phone(raw, settings.default_region)
    if letters and not digits:
        turkish = is_turkish(settings.locale)
        name = std.standardise_name(None, None, raw, turkish)
        query.first_key = fold(name.first, turkish)
        query.last_key = fold(name.last, turkish)
        query.first_canon = canonical_first_name(query.first_key)
    if " " not in raw and digits:
        for kind in CODE_KINDS:
            if code := std.standardise_code(raw, kind):
                query.codes[kind] = code
    return query


def _masked(raw: str) -> tuple[str, str, str, int | None] | None:
    """A masked email or phone (cdp.gates.masking's forms) as prefix, suffix and length."""
    if "@" in raw:
        local, _, domain = raw.lower().partition("@")
        prefix = local.split("*", 1)[0]
        if prefix and domain and "*" not in domain:
            return ("email", prefix, "@" + domain, None)
        return None
    if m := _MASKED_PHONE.match(re.sub(r"[\s().\-/]", "", raw)):
        return ("phone", m[1], m[3], len(m[1]) + len(m[2]) + len(m[3]))
    return None


def _matches(query: Query) -> tuple[str, list[Any]]:
    """One `select customer_id, matched_on` per reading, unioned; values as parameters."""
    parts: list[str] = []
    params: list[Any] = []
    records = "from identity.identity_records where customer_id is not null"
    if query.masked:
        kind, prefix, suffix, length = query.masked  # kind is "email" or "phone" (code)
        parts.append(f"""select customer_id, 'masked {kind}' as matched_on {records}
            and starts_with({kind}, ?) and ends_with({kind}, ?)
            and (? is null or length({kind}) = ?)""")
        params += [prefix, suffix, length, length]
        return " union all ".join(parts), params
    if query.email:
        parts.append(f"select customer_id, 'email' as matched_on {records} and email = ?")
        params.append(query.email)
    if query.phone:
        parts.append(f"select customer_id, 'phone' as matched_on {records} and phone = ?")
        params.append(query.phone)
    for kind, code in query.codes.items():
        # kind is one of CODE_KINDS (code, not data)
        parts.append(f"select customer_id, '{kind}' as matched_on {records} and {kind} = ?")
        params.append(code)
    if query.first_key and query.last_key:
        parts.append(f"""select customer_id, 'name' as matched_on {records} and (
            ((first_key = ? or first_canon = ?) and last_key = ?)
            or (first_key = ? and last_key = ?))""")
        params += [query.first_key, query.first_canon, query.last_key, query.last_key,
                   query.first_key]
    elif key := (query.first_key or query.last_key):
        # one word: a given name, a surname, or the start of either (3+ letters)
        parts.append(f"""select customer_id, 'name' as matched_on {records} and (
            first_key = ? or first_canon = ? or last_key = ?
            or (length(?) >= 3 and (starts_with(first_key, ?) or starts_with(last_key, ?))))""")
        params += [key, canonical_first_name(key), key, key, key, key]
    if " " not in query.text:
        ref_channel, sep, ref_id = query.text.partition(":")
        parts.append("""select customer_id, 'customer id' as matched_on
            from identity.golden_profiles where upper(customer_id) = upper(?)""")
        params.append(query.text)
        parts.append("""select customer_id, 'source record ' || source as matched_on
            from identity.identity_clusters where source_record_id = ?
            or (source = ? and source_record_id = ?)""")
        params += [query.text, ref_channel if sep else None, ref_id if sep else None]
    return " union all ".join(parts), params


def search(reader: Reader, query: Query, limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
    """Customers matching any reading of the query, best first (most readings matched, then
    most source records), at most `limit`. Erased customers are never found. Rows carry raw
    values: the caller masks them for display."""
    if query.empty:
        return []
    union, params = _matches(query)
    if not union:
        return []
    erased = ("and g.customer_id not in (select customer_id from identity.erased_customers)"
              if reader.has("identity", "erased_customers") else "")
    return reader.rows(f"""
        with hits as ({union}),
        matched as (
            select customer_id, list(distinct matched_on order by matched_on) as matched_on
            from hits group by customer_id)
        select g.customer_id, g.first_name, g.last_name, g.email, g.phone, g.city,
               g.channels, g.record_count, m.matched_on
        from matched m join identity.golden_profiles g using (customer_id)
        where true {erased}
        order by len(m.matched_on) desc, g.record_count desc, g.customer_id
        limit ?""", [*params, limit])
