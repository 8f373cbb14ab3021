"""Erasure (GDPR / KVKK right to be forgotten): `cdp forget` and the tombstones that keep an
erased person out of every later ingest. See README.md in this folder."""

from cdp.erasure.lock import lake_lock
from cdp.erasure.matcher import ChannelMatcher, Tombstones
from cdp.erasure.run import forget
from cdp.erasure.store import landing_aliases

__all__ = ["ChannelMatcher", "Tombstones", "forget", "lake_lock", "landing_aliases"]
