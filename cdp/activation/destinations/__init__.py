"""Destination adapters, one module each; `make_adapter` picks one by its config type."""

from __future__ import annotations

from cdp.activation.config import _Destination
from cdp.activation.destinations.base import ADD, REMOVE, Adapter, Batch, BatchResult
from cdp.config import Settings

__all__ = ["ADD", "REMOVE", "Adapter", "Batch", "BatchResult", "make_adapter"]


def make_adapter(config: _Destination, settings: Settings) -> Adapter:
    kind = config.type  # type: ignore[attr-defined]
    if kind == "meta":
        from cdp.activation.destinations.meta import MetaAdapter as cls
    elif kind == "google_ads":
        from cdp.activation.destinations.google_ads import GoogleAdsAdapter as cls
    elif kind == "tiktok":
        from cdp.activation.destinations.tiktok import TikTokAdapter as cls
    elif kind == "webhook":
        from cdp.activation.destinations.webhook import WebhookAdapter as cls
    elif kind == "postgres":
        from cdp.activation.destinations.postgres import PostgresAdapter as cls
    else:
        from cdp.activation.destinations.file import FileAdapter as cls
    return cls(config, settings)  # type: ignore[arg-type]
