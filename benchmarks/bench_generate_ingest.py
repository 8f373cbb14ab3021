"""Benchmark: generate demo data for N people, then ingest it. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_generate_ingest.py --people 20000

Each phase runs in a child process so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _phase(name: str, config: str, people: int, queue: mp.Queue) -> None:
    from cdp.config import load_settings

    settings = load_settings(config, env={})
    started = time.perf_counter()
    if name == "generate":
        from cdp.generate import generate

        figures = generate(settings, people=people).figures
        rows = figures["total_rows"]
        per_channel = figures["rows"]
    else:
        from cdp.ingest import ingest

        figures = ingest(settings).figures
        per_channel = {ch: f["rows_received"] for ch, f in figures["channels"].items()}
        rows = sum(per_channel.values())
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"phase": name, "rows": rows, "seconds": seconds, "peak_mb": peak_mb,
               "per_channel": per_channel})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20000)
    args = parser.parse_args()

    from tests.conftest import write_config

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        config = str(write_config(Path(folder)))
        queue: mp.Queue = mp.get_context("spawn").Queue()
        results = []
        for name in ("generate", "ingest"):
            proc = mp.get_context("spawn").Process(target=_phase,
                                                   args=(name, config, args.people, queue))
            proc.start()
            results.append(queue.get())
            proc.join()
    print(f"people: {args.people:,}")
    for r in results:
        print(f"{r['phase']:9s} {r['rows']:>10,} rows  {r['seconds']:7.1f} s  "
              f"{r['rows'] / r['seconds']:>9,.0f} rows/s  peak {r['peak_mb']:,.0f} MB")
    print(json.dumps(results[1]["per_channel"]))


if __name__ == "__main__":
    main()
