"""Identity resolution as a Spark job: what `cdp resolve` runs, on `engine: spark`.

    spark-submit --master 'local[*]' jobs/resolve_identity.py --config cdp.yaml
    spark-submit --master spark://host:7077 --conf spark.executor.memory=8g \
        jobs/resolve_identity.py --config /shared/cdp.yaml

The Airflow DAG `cdp_identity` submits exactly this (see dags/cdp_identity.py). Spark conf from
cdp.yaml (`spark.conf`, with the Splink jar) applies unless spark-submit sets it; see
jobs/README.md.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Identity resolution on Spark.")
    parser.add_argument("--config", help="cdp.yaml (default: $CDP_CONFIG or the nearest one)")
    args = parser.parse_args(argv)

    from cdp.spark import run_job
    from identity import resolve

    return run_job(args.config, resolve)


if __name__ == "__main__":
    sys.exit(main())
