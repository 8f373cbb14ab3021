"""Identity resolution as a Spark job: what `cdp resolve` runs, on `engine: spark`.

    spark-submit --master 'local[*]' jobs/resolve_identity.py --config cdp.yaml
    spark-submit --master 'local[*]' jobs/resolve_identity.py --config cdp.yaml --mode auto
    spark-submit --master spark://host:7077 --conf spark.executor.memory=8g \
        jobs/resolve_identity.py --config /shared/cdp.yaml

The Airflow DAG `cdp_identity` submits exactly this (see dags/cdp_identity.py). Spark conf from
cdp.yaml (`spark.conf`, with the Splink jar) applies unless spark-submit sets it; see
jobs/README.md.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Identity resolution on Spark.")
    parser.add_argument("--config", help="cdp.yaml (default: $CDP_CONFIG or the nearest one)")
    parser.add_argument("--mode", default="scheduled",
                        choices=["scheduled", "full", "incremental", "auto"],
                        help="full, incremental (only new batches), auto (incremental unless "
                             "a full run is due) or scheduled (identity.scheduled_mode, the "
                             "default)")
    parser.add_argument("--trigger", help="who asks for the run, kept in the run log "
                                          "(the DAG passes airflow:<dag id>/<run id>)")
    args = parser.parse_args(argv)

    from cdp.spark import run_job
    from identity.schedule import resolve_in_mode

    return run_job(args.config, partial(resolve_in_mode, mode=args.mode,
                                        trigger=args.trigger))


if __name__ == "__main__":
    sys.exit(main())
