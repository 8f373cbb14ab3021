"""Does this row, record or text belong to an erased person? One answer for every place.

The same `Tombstones` decides at ingest (a re-delivered row is dropped), when the lake, the
quarantine and landing files are purged, and in the warehouse: a value matches when the keyed
digest of its normalised form (identity.standardise: `0532 123 45 67` and `+905321234567` are
one phone) is a tombstone, and a row matches when its (channel, primary key) is one or any of
its identifier columns matches.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.config import Channel, Settings
from cdp.erasure import keys
from cdp.erasure.store import read_tombstones
from cdp.errors import CdpError
from identity import standardise as std

RECORD = "record"
IDENTIFIER_KINDS = ("email", "phone", "loyalty_id", "login_id", "device_id")
CODE_KINDS = ("loyalty_id", "login_id", "device_id")
_EMAIL = re.compile(r"[^\s,;\"'<>()\[\]{}|]+@[^\s,;\"'<>()\[\]{}|]+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_TOKENS = re.compile(r"[\s,;\"'{}\[\]|=]+")
_CACHE_LIMIT = 500_000


def standardise(kind: str, raw: Any, region: str) -> str | None:
    """The normalised identifier, as identity resolution computes it (None when invalid)."""
    if raw is None:
        return None
    if kind == "email":
        return std.standardise_email(raw)
    if kind == "phone":
        return std.standardise_phone(raw, region)
    return std.standardise_code(raw, kind)


class Tombstones:
    """The tombstone digests and the key that made them."""

    def __init__(self, key: bytes, digests: dict[str, set[str]], region: str) -> None:
        self.key = key
        self.digests = digests
        self.region = region
        self._seen: dict[tuple[str, Any], bool] = {}

    @classmethod
    def load(cls, settings: Settings) -> Tombstones | None:
        """Every recorded tombstone, or None when nobody was ever erased. Fails closed: a
        missing or different key is an error, never tombstones that silently stop matching."""
        digests, checks, _ = read_tombstones(settings)
        if not any(digests.values()):
            return None
        key = keys.load_key(settings)
        name = settings.erasure.key_env
        if key is None:
            raise CdpError(f"erasure tombstones exist but the erasure key is missing (neither "
                           f"${name} nor {keys.key_file(settings)}): without it erased people "
                           "would be loaded again; restore the key")
        if checks != {keys.key_check(key)}:
            raise CdpError(f"the erasure key (${name} or {keys.key_file(settings)}) is not the "
                           "key the tombstones were made with; restore the original key")
        return cls(key, digests, settings.default_region)

    # --- single values -----------------------------------------------------------------------

    def has(self, kind: str, normalised: str | None) -> bool:
        """True when an already normalised value (or record value) is tombstoned."""
        found = self.digests.get(kind)
        return bool(found and normalised and keys.digest(self.key, kind, normalised) in found)

    def record(self, source: str, record_id: Any) -> bool:
        if record_id is None or RECORD not in self.digests:
            return False
        memo = (RECORD, source, record_id)  # lake, landing, warehouse ask about the same ids
        hit = self._seen.get(memo)
        if hit is None:
            if len(self._seen) > _CACHE_LIMIT:
                self._seen.clear()
            hit = self._seen[memo] = self.has(RECORD, keys.record_value(source, str(record_id)))
        return hit

    def identifier(self, kind: str, raw: Any) -> bool:
        """True when a raw value of an identifier column normalises to a tombstoned value."""
        if raw is None or kind not in self.digests:
            return False
        memo = (kind, raw)
        hit = self._seen.get(memo)
        if hit is None:
            if len(self._seen) > _CACHE_LIMIT:
                self._seen.clear()
            hit = self._seen[memo] = self.has(kind, standardise(kind, raw, self.region))
        return hit

    def text(self, source: str, text: str | None, delimiter: str | None = None) -> bool:
        """True when free text (a quarantined record, unknown columns) holds a tombstoned
        identifier or record id: JSON values, CSV fields, tokens, emails and phones in it."""
        if not text:
            return False
        return any(self._candidate(source, value) for value in _candidates(text, delimiter))

    def _candidate(self, source: str, value: str) -> bool:
        value = value.strip()
        if not value:
            return False
        if self.record(source, value):
            return True
        if "@" in value and self.identifier("email", value):
            return True
        if sum(c.isdigit() for c in value) >= 6 and self.identifier("phone", value):
            return True
        return any(self.identifier(kind, value) for kind in CODE_KINDS)

    # --- per channel -------------------------------------------------------------------------

    def for_channel(self, channel: Channel, identifiers: Iterable[str]) -> ChannelMatcher:
        return ChannelMatcher(self, channel, identifiers)

    def unknown_channel(self, source: str) -> Callable[[pa.Table], np.ndarray]:
        """A table matcher for lake files of a channel no longer configured: every text
        column is searched as free text."""
        def match(table: pa.Table) -> np.ndarray:
            mask = np.zeros(table.num_rows, dtype=bool)
            for name in table.column_names:
                if pa.types.is_string(table.schema.field(name).type):
                    mask |= self.distinct_mask(table.column(name),
                                                lambda v: self.text(source, v))
            return mask
        return match

    def distinct_mask(self, column: pa.ChunkedArray, test: Callable[[Any], bool]
                       ) -> np.ndarray:
        """Evaluate `test` once per distinct non-null value; the rows holding a hit."""
        distinct = pc.unique(column.drop_null())
        hits = [v for v in distinct.to_pylist() if test(v)]
        if not hits:
            return np.zeros(len(column), dtype=bool)
        found = pc.is_in(column, value_set=pa.array(hits, column.type))
        return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


class ChannelMatcher:
    """Matches the rows of one channel: by primary key, by each mapped identifier column, and
    free text in the columns a non-strict channel did not declare (`_extra`)."""

    def __init__(self, tombstones: Tombstones, channel: Channel,
                 identifiers: Iterable[str]) -> None:
        from cdp.ingest.values import make_converter  # the key as ingest types it

        self.t = tombstones
        self.channel = channel
        names = list(channel.columns)
        self.pk = channel.primary_key
        self.pk_index = names.index(self.pk)
        self.pk_convert = make_converter(channel.columns[self.pk], True)
        wanted = set(identifiers)
        self.fields = [(kind, column, names.index(column))
                       for kind, column in channel.identity.items()
                       if kind in wanted and kind in IDENTIFIER_KINDS]
        self.delimiter = channel.delimiter if channel.format == "csv" else None

    def key_text(self, value: Any) -> Any:
        """The primary key as the raw lake stores it, as text (what identity_clusters holds)."""
        try:
            typed = self.pk_convert(value)
        except Exception:  # noqa: BLE001 - an untypable key is compared as received
            typed = value
        return None if typed is None else str(typed)

    def incoming(self, record: Any) -> bool:
        """Ingest and landing files: a `cdp.ingest.readers.Incoming` record."""
        source = self.channel.name
        values = record.values
        if values is None:  # not split into fields: search its text
            return self.t.text(source, record.raw, self.delimiter)
        if self.t.record(source, self.key_text(values[self.pk_index])):
            return True
        if any(self.t.identifier(kind, values[i]) for kind, _, i in self.fields):
            return True
        if record.extra:
            return self.t.text(source, json.dumps(record.extra, ensure_ascii=False,
                                                  default=str))
        return False

    def table(self, table: pa.Table) -> np.ndarray:
        """Raw lake files (typed columns + lineage): a boolean mask of the matching rows."""
        source = self.channel.name
        mask = np.zeros(table.num_rows, dtype=bool)
        if self.pk in table.column_names and RECORD in self.t.digests:
            ids = pc.cast(table.column(self.pk), pa.string()).to_pylist()
            mask |= np.fromiter((self.t.record(source, v) for v in ids), dtype=bool,
                                count=len(ids))
        for kind, column, _ in self.fields:
            if column in table.column_names and kind in self.t.digests:
                mask |= self.t.distinct_mask(
                    pc.cast(table.column(column), pa.string()),
                    lambda v, kind=kind: self.t.identifier(kind, v))
        if "_extra" in table.column_names:
            mask |= self.t.distinct_mask(table.column("_extra"),
                                          lambda v: self.t.text(source, v))
        return mask


def _candidates(text: str, delimiter: str | None) -> list[str]:
    """The values free text may hold: JSON values or CSV fields, tokens, emails and phones."""
    found: list[str] = []
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            found += [str(v) for v in _scalars(parsed)]
    if delimiter:
        with contextlib.suppress(csv.Error):
            found += next(csv.reader([text], delimiter=delimiter), [])
    found += _TOKENS.split(text)
    found += _EMAIL.findall(text)
    found += _PHONE.findall(text)
    return found


def _scalars(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield value
