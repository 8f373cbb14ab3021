"""Execution engines for identity resolution.

The pipeline (`identity.resolve`) speaks SQL that DuckDB and Spark both understand and builds
one Splink settings dictionary; an engine only supplies what differs between backends: reading
the raw lake, moving small tables between Python and the engine, mapping distinct values through
a Python function, and Splink's database API. DuckDB is the only engine implemented so far.
"""

from __future__ import annotations

from cdp.config import Settings
from cdp.errors import CdpError
from identity.engines.base import Engine


def get_engine(settings: Settings) -> Engine:
    """The engine named by `settings.engine`."""
    if settings.engine == "duckdb":
        from identity.engines.duckdb import DuckDBEngine

        return DuckDBEngine(settings)
    raise CdpError(
        f"identity resolution on engine '{settings.engine}' is not implemented yet; "
        "set engine: duckdb in cdp.yaml (or CDP_ENGINE=duckdb)"
    )


__all__ = ["Engine", "get_engine"]
