"""Activation (reverse ETL): `cdp sync` pushes segment membership to ad platforms, webhooks,
files and operational databases as add / remove diffs, with hashing, consent and erasure
filtering, retries, and a sync state in the warehouse (schema `activation`).

    from cdp.activation import sync
    summary = sync(settings, segments=None, destinations=None, full=False, dry_run=False)
"""

from cdp.activation.engine import sync

__all__ = ["sync"]
