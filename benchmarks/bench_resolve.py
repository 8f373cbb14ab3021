"""Benchmark `cdp resolve` on generated data: wall time per phase, peak memory, records/s.

    .venv/bin/python benchmarks/bench_resolve.py 100000
    .venv/bin/python benchmarks/bench_resolve.py 1000000 --evaluate

Generates (and ingests) a demo dataset of about RECORDS source records once per size/seed/noise
under --workdir, then runs resolve in a fresh child process so its peak resident memory
(`ru_maxrss`, which counts DuckDB's native allocations that tracemalloc cannot see) is not
inflated by generation. Target on 2 cores: 1M records in under 3 minutes, peak under 6 GB.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

try:  # run as a script: this folder is on sys.path
    from _child import run_child
except ImportError:  # run as a module: python -m benchmarks.bench_resolve
    from benchmarks._child import run_child

# The generator writes about this many source records per simulated person (all channels).
RECORDS_PER_PERSON = 12.2


# Both children load the project's cdp.yaml with the data directory moved to the benchmark's.
PREPARE = """
import json, sys, time
from cdp.config import load_settings
root, people, seed, noise = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": root})
out = {}
if not settings.resolved_paths.truth.exists():
    from cdp.generate import generate
    from cdp.ingest import ingest
    t = time.perf_counter(); generate(settings, people=people, seed=seed, noise=noise)
    out["generate_s"] = time.perf_counter() - t
    t = time.perf_counter(); ingest(settings); out["ingest_s"] = time.perf_counter() - t
print(json.dumps(out))
"""

RESOLVE = """
import json, resource, sys, time
from cdp.config import load_settings
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": sys.argv[1]})
from identity import evaluate, resolve
started = time.perf_counter()
summary = resolve(settings)
wall = time.perf_counter() - started
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"wall_s": wall, "peak_rss_mb": rss_kb / 1024, "figures": summary.figures}
if sys.argv[2] == "1":
    out["evaluation"] = evaluate(settings, settings.resolved_paths.truth).figures
print(json.dumps(out, default=str))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=int, help="approximate number of source records")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "cdp-bench-resolve")
    parser.add_argument("--evaluate", action="store_true",
                        help="also score against the generator's truth file")
    args = parser.parse_args()

    people = max(1, math.ceil(args.records / RECORDS_PER_PERSON))
    root = args.workdir / f"records{args.records}_seed{args.seed}_noise{args.noise}"
    prepared = run_child(PREPARE, str(root), str(people), str(args.seed), str(args.noise))
    if prepared:
        print(f"prepared {people:,} people: generate {prepared['generate_s']:.1f}s, "
              f"ingest {prepared['ingest_s']:.1f}s  ({root})")
    result = run_child(RESOLVE, str(root), "1" if args.evaluate else "0")
    f = result["figures"]
    records = sum(f["rows_in"].values())
    print(f"resolve on {os.cpu_count()} cores, {people:,} people")
    print(f"  source records        {records:>12,}")
    print(f"  identity records      {f['records']:>12,}")
    print(f"  Splink input records  {f['model']['records']:>12,}  "
          f"comparisons {f['model']['comparisons']:,}")
    print(f"  links rule / model    {sum(f['links_by_rule'].values()):>12,} / "
          f"{f['links_by_model']:,}")
    print(f"  customers             {f['customers']:>12,}")
    for phase, seconds in f["seconds"].items():
        print(f"  {phase:<21} {seconds:>11.1f}s")
    print(f"  wall time             {result['wall_s']:>11.1f}s")
    print(f"  records/s             {records / result['wall_s']:>12,.0f}")
    print(f"  peak memory (RSS)     {result['peak_rss_mb']:>10,.0f} MB")
    if "evaluation" in result:
        e = result["evaluation"]
        print(f"  pairwise P / R / F1   {e['precision']:.4f} / {e['recall']:.4f} / {e['f1']:.4f}")
    # Also the benchmark process's own children, for completeness (the largest child).
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  (largest child process RSS, incl. generation: {children:,.0f} MB; "
          f"benchmark total {time.process_time():.1f}s CPU in parent)")


if __name__ == "__main__":
    main()
