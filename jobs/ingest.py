"""Ingestion as a Spark job: what `cdp ingest` runs, on `engine: spark`.

    spark-submit --master 'local[*]' jobs/ingest.py --config cdp.yaml [--channel web_orders]

One Spark task per new landing file reads and validates it with the same code as the local
ingest; the driver commits the batches (raw lake, quarantine, load log). See jobs/README.md.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ingestion (landing -> raw lake) on Spark.")
    parser.add_argument("--config", help="cdp.yaml (default: $CDP_CONFIG or the nearest one)")
    parser.add_argument("--channel", action="append", dest="channels",
                        help="only this channel (repeatable; default: every channel)")
    args = parser.parse_args(argv)

    from cdp.ingest import ingest
    from cdp.spark import run_job

    return run_job(args.config, lambda settings: ingest(settings, channels=args.channels))


if __name__ == "__main__":
    sys.exit(main())
