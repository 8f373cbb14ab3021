"""Customer id values: how a new id is derived, and how it avoids every id issued before.

Which cluster keeps which id across runs is `identity.stable_ids`; this module only mints ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

CUSTOMER_ID_PREFIX = "C"
# Salted attempts before giving up (64-bit ids: a second attempt is already astronomically rare)
MAX_ATTEMPTS = 1000


def customer_id(member_record_keys: list[str] | tuple[str, ...] | set[str]) -> str:
    """The first-choice id of a cluster: derived from its smallest member record key, so a run
    from scratch on the same data gives the same ids (64 bits of SHA-256)."""
    return _hashed(min(member_record_keys))


def _hashed(text: str) -> str:
    return CUSTOMER_ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16].upper()


def new_customer_id(smallest_record_key: str, taken: Collection[str]) -> str:
    """An id for a new cluster that is in no way `taken` (every id ever issued, merged, retired
    or erased, and those issued earlier in this run): the hash of its smallest record key, or,
    when that was issued before (the record was once the smallest of a customer that has since
    been merged or split away), the hash of the key salted with `#1`, `#2`, ..."""
    candidate = _hashed(smallest_record_key)
    attempt = 0
    while candidate in taken:
        attempt += 1
        if attempt > MAX_ATTEMPTS:  # pragma: no cover - would need 1000 SHA-256 collisions
            raise RuntimeError("could not mint an unused customer id")
        candidate = _hashed(f"{smallest_record_key}#{attempt}")
    return candidate
