"""Execution engines for identity resolution.

The pipeline (`identity.resolve`) writes its SQL once and builds one Splink settings
dictionary; an engine only supplies what differs between backends: reading the raw lake,
moving small tables between Python and the engine, mapping distinct values through a Python
function, and Splink's database API.

The SQL is written once, in DuckDB's dialect; the Spark engine transpiles it (sqlglot), so a
query needs no second copy. Keep to SQL that has a Spark equivalent (the Spark tests say so).
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
    if settings.engine == "spark":
        try:
            from identity.engines.spark import SparkEngine
        except ImportError as exc:
            raise CdpError("engine: spark needs PySpark: pip install 'cdp[spark]' "
                           f"({exc.name} is missing)") from None
        return SparkEngine(settings)
    raise CdpError(f"unknown engine '{settings.engine}'; use duckdb or spark")


__all__ = ["Engine", "get_engine"]
