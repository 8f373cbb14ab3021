"""What each destination receives per member: an ordered list of keys, normalised and hashed.

A member's payload is stored as one string (values joined by the unit separator \\x1f, missing
values empty) with its layout (the key names, comma-joined). The sync state keeps both, so a
removal later sends exactly the keys that were added, even when the profile changed or was
erased since, and a member whose payload changed is a changed member.

Work is column-wise, and keys whose values repeat (names, dates, cities, consent) are
normalised and hashed once per distinct value.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdp.activation import normalise as n
from cdp.activation.source import ELIGIBLE

SEPARATOR = "\x1f"
NO_IDENTIFIER = "no_identifier"
# Fields with about one value per person: memoising them costs memory and saves nothing.
_HIGH_CARDINALITY = {"customer_id", "email", "phone"}

CANDIDATE_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("status", pa.string()), ("payload", pa.string()),
    ("matchable", pa.bool_()),
])


@dataclass(frozen=True)
class Key:
    """One value sent per member: `name` as the destination calls it, taken from the member
    column `field`, normalised by `normalise`, SHA-256 hashed when `hashed`."""

    name: str
    field: str
    normalise: Callable[[Any], str | None]
    hashed: bool
    pii: bool = True  # an unhashed value that identifies a person (masked in samples)


def meta_keys(schema: Sequence[str], region: str) -> list[Key]:
    catalogue = {
        "EMAIL": Key("EMAIL", "email", n.meta_email, True),
        "PHONE": Key("PHONE", "phone", partial(n.meta_phone, region=region), True),
        "FN": Key("FN", "first_name", n.meta_name, True),
        "LN": Key("LN", "last_name", n.meta_name, True),
        "GEN": Key("GEN", "gender", n.meta_gender, True),
        "DOBY": Key("DOBY", "birth_date", n.birth_year, True),
        "DOBM": Key("DOBM", "birth_date", n.birth_month, True),
        "DOBD": Key("DOBD", "birth_date", n.birth_day, True),
        "CT": Key("CT", "city", n.meta_city, True),
        "ZIP": Key("ZIP", "postcode", n.meta_zip, True),
        "COUNTRY": Key("COUNTRY", "country", n.meta_country, True),
        "EXTERN_ID": Key("EXTERN_ID", "customer_id", n.raw_text, False, pii=False),
    }
    return [catalogue[name] for name in schema]


GOOGLE_ADDRESS = ("hashedFirstName", "hashedLastName", "countryCode", "postalCode")


def google_keys(identifiers: Sequence[str], region: str, ad_user_data_from: str,
                ad_personalization_from: str) -> list[Key]:
    keys: list[Key] = []
    if "email" in identifiers:
        keys.append(Key("hashedEmail", "email", n.google_email, True))
    if "phone" in identifiers:
        keys.append(Key("hashedPhoneNumber", "phone", partial(n.google_phone, region=region),
                        True))
    if "address" in identifiers:
        keys += [
            Key("hashedFirstName", "first_name", n.google_first_name, True),
            Key("hashedLastName", "last_name", n.google_last_name, True),
            Key("countryCode", "country", n.country_code, False, pii=False),
            Key("postalCode", "postcode", n.postal_code, False),
        ]
    keys += [
        Key("adUserData", ad_user_data_from, n.consent_status, False, pii=False),
        Key("adPersonalization", ad_personalization_from, n.consent_status, False, pii=False),
    ]
    return keys


def tiktok_keys(region: str) -> list[Key]:
    return [
        Key("Email_SHA256", "email", n.tiktok_email, True),
        Key("Phone_SHA256", "phone", partial(n.meta_phone, region=region), True),
    ]


def generic_keys(fields: Sequence[str], region: str) -> list[Key]:
    """Fields for our own destinations. Hashed ones: email trimmed+lowercased, phone E.164."""
    catalogue = {
        "customer_id": Key("customer_id", "customer_id", n.raw_text, False, pii=False),
        "email_sha256": Key("email_sha256", "email", n.generic_email, True),
        "phone_sha256": Key("phone_sha256", "phone", partial(n.google_phone, region=region),
                            True),
        "email": Key("email", "email", n.generic_email, False),
        "phone": Key("phone", "phone", partial(n.google_phone, region=region), False),
        "first_name": Key("first_name", "first_name", n.raw_text, False),
        "last_name": Key("last_name", "last_name", n.raw_text, False),
        "birth_date": Key("birth_date", "birth_date", n.iso_date, False),
        "gender": Key("gender", "gender", n.gender_letter, False, pii=False),
        "city": Key("city", "city", n.raw_text, False, pii=False),
        "postcode": Key("postcode", "postcode", n.raw_text, False),
        "country": Key("country", "country", n.country_code, False, pii=False),
        "since": Key("since", "since", n.iso_date, False, pii=False),
    }
    return [catalogue[name] for name in fields]


# --- which members a destination can match at all ------------------------------------------
# Each destination lists alternatives; a member is sendable when every key of one is present.

SENDABLE_META = (("EMAIL",), ("PHONE",), ("FN", "LN", "ZIP"), ("FN", "LN", "CT"),
                 ("FN", "LN", "DOBY"))
SENDABLE_GOOGLE = (("hashedEmail",), ("hashedPhoneNumber",), GOOGLE_ADDRESS)
SENDABLE_TIKTOK = (("Email_SHA256",), ("Phone_SHA256",))


# --- building payloads -----------------------------------------------------------------------

def decode(payload: str | None, layout: str) -> dict[str, str | None]:
    """The key -> value mapping of a stored payload (missing values are None)."""
    names = layout.split(",") if layout else []
    values = payload.split(SEPARATOR) if payload is not None else []
    return {name: (values[i] or None) if i < len(values) else None
            for i, name in enumerate(names)}


def _python_column(key: Key, values: list[Any]) -> list[str]:
    """The key's value for each input value, '' when missing."""
    if key.hashed:
        return n.hash_column(values, key.normalise)
    normalise = key.normalise
    return [(normalise(v) or "") if v is not None else "" for v in values]


def key_array(key: Key, column: pa.ChunkedArray | pa.Array,
              memo: dict[Any, str] | None = None) -> pa.Array:
    """The key's value for every member as an Arrow string array ('' when missing).

    Values that repeat (names, dates, cities, consent flags) are normalised and hashed once
    per distinct value (kept in `memo` across calls) through a dictionary encoding;
    identifiers with about one value per person (email, phone, customer id) go through the
    hashing loop directly.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    textual = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    if key.field in _HIGH_CARDINALITY or not textual:
        return pa.array(_python_column(key, array.to_pylist()), pa.string())
    memo = {} if memo is None else memo
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary.to_pylist()
    new = [v for v in distinct if v not in memo]
    memo.update(zip(new, _python_column(key, new), strict=True))
    computed = pa.array([memo[v] for v in distinct], pa.string())
    return pc.fill_null(pc.take(computed, encoded.indices), "")


class PayloadBuilder:
    """Turns member rows (source.Source.members) into candidate rows for one destination."""

    def __init__(self, keys: list[Key], region: str,
                 sendable: Sequence[Sequence[str]] | None = None) -> None:
        self.keys = keys
        self.names = [k.name for k in keys]
        self.layout = ",".join(self.names)
        self.region = region
        self.memos: list[dict[Any, str]] = [{} for _ in keys]  # per key, across chunks
        self.sendable = [[self.names.index(name) for name in alternative]
                         for alternative in (sendable or ()) if set(alternative) <= set(self.names)]
        if sendable and not self.sendable:
            raise ValueError("none of the destination's identifying keys is in its schema")

    def build(self, members: pa.Table) -> pa.Table:
        """customer_id, status (eligible, or why not), payload (eligible only), matchable."""
        # Millions of short-lived strings, no reference cycles: the cyclic garbage collector
        # would only rescan them over and over.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build(members)
        finally:
            if enabled:
                gc.enable()

    def _build(self, members: pa.Table) -> pa.Table:
        is_eligible = pc.equal(members.column("status"), ELIGIBLE)
        eligible = members.filter(is_eligible)
        others = members.filter(pc.invert(is_eligible))
        arrays = [key_array(k, eligible.column(k.field), memo)
                  for k, memo in zip(self.keys, self.memos, strict=True)]
        payload = (pc.binary_join_element_wise(*arrays, SEPARATOR) if len(arrays) > 1
                   else arrays[0])
        sendable = pa.array([True] * eligible.num_rows, pa.bool_())
        if self.sendable:
            alternatives = [
                functools.reduce(pc.and_, [pc.not_equal(arrays[i], "") for i in alternative])
                for alternative in self.sendable]
            sendable = functools.reduce(pc.or_, alternatives)
        null = pa.scalar(None, pa.string())
        sent = pa.table({
            "customer_id": eligible.column("customer_id"),
            "status": pc.if_else(sendable, ELIGIBLE, NO_IDENTIFIER),
            "payload": pc.if_else(sendable, payload, null),
            "matchable": eligible.column("matchable"),
        }, schema=CANDIDATE_SCHEMA)
        skipped = pa.table({
            "customer_id": others.column("customer_id"),
            "status": others.column("status"),
            "payload": pa.nulls(others.num_rows, pa.string()),
            "matchable": others.column("matchable"),
        }, schema=CANDIDATE_SCHEMA)
        return pa.concat_tables([sent, skipped])
