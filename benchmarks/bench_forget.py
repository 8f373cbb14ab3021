"""Benchmark: `cdp forget` on N generated people, and ingest with tombstones. Prints figures.

    .venv/bin/python benchmarks/bench_forget.py --people 20000

Set-up (generate, ingest, resolve; no dbt build, so the marts pass has nothing to purge), then
each measured phase in a child process so its peak memory (ru_maxrss) is its own:
  dry run     forget --dry-run of the customer with the most source records
  forget      the same, for real (lake, landing, identity tables, compaction)
  re-ingest   every landing file as first delivered (the person still in it), again under a
              new name (one line added, or re-encoded, so its hash is new): rows/s with the
              tombstone check on every row, against the first ingest's rows/s without
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _phase(name: str, config: str, people: int, customer: str | None,
           queue: mp.Queue) -> None:
    from cdp.config import load_settings

    settings = load_settings(config, env={})
    started = time.perf_counter()
    out: dict[str, Any] = {"phase": name}
    if name == "setup":
        from cdp.generate import generate
        from cdp.ingest import ingest
        from identity import resolve

        generate(settings, people=people)
        begun = time.perf_counter()
        figures = ingest(settings).figures
        out["ingest_rows"] = figures["rows_received"]
        out["ingest_seconds"] = time.perf_counter() - begun
        resolve(settings)
        shutil.copytree(settings.resolved_paths.landing, Path(config).parent / "as_delivered")
        import duckdb

        with duckdb.connect(str(settings.resolved_paths.warehouse), read_only=True) as con:
            out["customer"], out["records"] = con.execute(
                "select customer_id, count(*) from identity.identity_clusters "
                "group by 1 order by 2 desc, 1 limit 1").fetchall()[0]
    elif name in ("dry run", "forget"):
        from cdp.erasure import forget

        figures = forget(settings, customer_ids=[customer or ""],
                         dry_run=name == "dry run").figures
        out["lake"] = figures["lake"]
        out["stages"] = figures["seconds"]
        out["identity_clusters"] = figures["warehouse_tables"].get("identity.identity_clusters")
    else:
        from cdp.ingest import ingest

        _redeliver(Path(config).parent / "as_delivered", settings.resolved_paths.landing)
        figures = ingest(settings).figures
        out["rows"], out["erased"] = figures["rows_received"], figures["rows_erased"]
    out["seconds"] = time.perf_counter() - started
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def _redeliver(delivered: Path, landing: Path) -> None:
    """The files as first delivered (the person still in them), again under new names."""
    import pyarrow.parquet as pq

    for path in sorted(p for p in delivered.rglob("*") if p.is_file()):
        copy = landing / path.relative_to(delivered).with_name(f"resent_{path.name}")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            pq.write_table(table, copy, compression="zstd")  # other bytes, same rows
        else:
            data = path.read_bytes()
            last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
            copy.write_bytes(data + last + b"\n")  # one duplicate row: quarantined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20000)
    args = parser.parse_args()

    from tests.conftest import write_config

    context = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-forget-") as folder:
        config = str(write_config(Path(folder)))
        queue: mp.Queue = context.Queue()
        customer = None
        for name in ("setup", "dry run", "forget", "re-ingest"):
            proc = context.Process(target=_phase,
                                   args=(name, config, args.people, customer, queue))
            proc.start()
            result = queue.get()
            proc.join()
            if name == "setup":
                customer = result["customer"]
                first_rate = result["ingest_rows"] / result["ingest_seconds"]
                print(f"setup: {args.people:,} people, {result['ingest_rows']:,} rows; first "
                      f"ingest {first_rate:,.0f} rows/s (no tombstones); erasing a customer "
                      f"with {result['records']} source records")
            elif name == "re-ingest":
                rate = result["rows"] / result["seconds"]
                print(f"{name}: {result['rows']:,} rows in {result['seconds']:.1f} s, "
                      f"{rate:,.0f} rows/s with tombstones ({rate / first_rate:.0%} of the "
                      f"first ingest), {result['erased']} erased, peak {result['peak_mb']:.0f} "
                      "MB")
            else:
                print(f"{name}: {result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB; "
                      f"stages {result['stages']}; identity clusters "
                      f"{result['identity_clusters']}, lake {result['lake']}")


if __name__ == "__main__":
    main()
