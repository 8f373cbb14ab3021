"""Lossless ingestion: landing files -> raw lake (typed Parquet) + quarantine + load log.

    from cdp.ingest import ingest
    summary = ingest(settings)                      # every configured channel
    summary = ingest(settings, ["pos_transactions"])

Channels are declared in cdp.yaml only (see ONBOARDING.md in this folder).
"""

from cdp.ingest.runner import IngestError, ingest

__all__ = ["IngestError", "ingest"]
