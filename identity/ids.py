"""Customer id assignment (kept apart: stable ids across runs will replace this function)."""

from __future__ import annotations

import hashlib

CUSTOMER_ID_PREFIX = "C"


def customer_id(member_record_keys: list[str] | tuple[str, ...] | set[str]) -> str:
    """A deterministic id for a cluster: derived from its smallest member record key, so the same
    cluster gets the same id on every run (64 bits of SHA-256: collisions are negligible)."""
    smallest = min(member_record_keys)
    return CUSTOMER_ID_PREFIX + hashlib.sha256(smallest.encode("utf-8")).hexdigest()[:16].upper()
