"""Benchmark `cdp resolve --incremental`: NEW new records against about EXISTING resolved ones.

    .venv/bin/python benchmarks/bench_incremental.py 1000000 --new 10000
    .venv/bin/python benchmarks/bench_incremental.py 100000 --new 10000 --compare

Generates a demo dataset of about EXISTING + NEW source records once (cached under --workdir),
holds back NEW randomly chosen rows of the landing files (spread over every channel, so most
belong to people who already have records), ingests the rest and runs a full resolve; then
lands and ingests the held-back rows and runs the incremental resolve. Each resolve runs in a
fresh child process, so its peak resident memory (`ru_maxrss`) is its own. Prints wall time,
phases, peak memory, and the incremental time as a share of the full run's. With --compare it
also runs a full resolve on all the data and reports how far the incremental result is from
it (pairwise F1 between the two partitions) and both results' F1 against the truth file.
Target (issue #8): 10k new against 1M resolved in under 5% of a full run's time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from cdp.generate.late import land_late_files, split_landing

try:  # run as a script: this folder is on sys.path
    from _child import run_child
except ImportError:  # run as a module: python -m benchmarks.bench_incremental
    from benchmarks._child import run_child

REPO = Path(__file__).resolve().parents[1]
RECORDS_PER_PERSON = 12.2  # source records the generator writes per person (all channels)
LATE_DIR = "landing_late"

GENERATE = """
import json, sys
from cdp.config import load_settings
from cdp.generate import generate
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": sys.argv[1]})
generate(settings, people=int(sys.argv[2]), seed=int(sys.argv[3]))
print(json.dumps({}))
"""

INGEST = """
import json, sys, time
from cdp.config import load_settings
from cdp.ingest import ingest
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": sys.argv[1]})
t = time.perf_counter(); ingest(settings)
print(json.dumps({"ingest_s": time.perf_counter() - t}))
"""

RESOLVE = """
import json, resource, sys, time
from cdp.config import load_settings
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": sys.argv[1],
                                          "CDP_WAREHOUSE": sys.argv[2]})
from identity import evaluate, resolve
started = time.perf_counter()
summary = resolve(settings, incremental=sys.argv[3] == "1")
wall = time.perf_counter() - started
out = {"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "figures": summary.figures}
if sys.argv[4] == "1":
    out["evaluation"] = evaluate(settings, settings.resolved_paths.truth).figures
print(json.dumps(out, default=str))
"""

AGREEMENT = """
import json, sys, duckdb
from identity.evaluate import contingency_metrics
con = duckdb.connect()
con.execute("attach ? as a (read_only)", [sys.argv[1]])
con.execute("attach ? as b (read_only)", [sys.argv[2]])
con.execute('''create view pairs as
    select coalesce(x.customer_id, 'none:' || y.source || ':' || y.source_record_id) as cluster,
           coalesce(y.customer_id, 'none:' || x.source || ':' || x.source_record_id) as entity
    from a.identity.identity_clusters x
    full join b.identity.identity_clusters y
      on x.source = y.source and x.source_record_id = y.source_record_id''')
m = contingency_metrics(con, "pairs")
same = con.execute('''select count(*) filter (where x.customer_id = y.customer_id), count(*)
    from a.identity.identity_clusters x join b.identity.identity_clusters y
    using (source, source_record_id)''').fetchall()[0]
m["same_customer_id_share"] = same[0] / same[1] if same[1] else 1.0
print(json.dumps(m))
"""


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, dst.with_name(dst.name + ".wal"))


def _print_run(name: str, result: dict) -> None:
    seconds = result["figures"].get("seconds", {})
    phases = "  ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
    print(f"  {name:<12} {result['wall_s']:>8.1f}s   peak RSS {result['peak_rss_mb']:>7,.0f} MB"
          f"   {phases}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("existing", type=int, help="approximate source records already resolved")
    parser.add_argument("--new", type=int, default=10_000, help="new source records")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--compare", action="store_true",
                        help="also run a full resolve on all data and compare")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the incremental resolve this many times (each on a fresh "
                             "copy of the warehouse) and report the median")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "cdp-bench-incremental")
    args = parser.parse_args()

    people = max(1, math.ceil((args.existing + args.new) / RECORDS_PER_PERSON))
    root = args.workdir / f"existing{args.existing}_new{args.new}_seed{args.seed}"
    base = root / "data"
    if not (base / "lake").exists():
        shutil.rmtree(root, ignore_errors=True)
        run_child(GENERATE, str(base), str(people), str(args.seed))
        moved = split_landing(base / "landing", root / LATE_DIR, args.new, args.seed)
        print(f"generated {people:,} people; held back {moved:,} rows")
        print(f"ingest of the first part: {run_child(INGEST, str(base))['ingest_s']:.1f}s")
        full = run_child(RESOLVE, str(base), str(root / "before.duckdb"), "0", "0")
        (root / "full_before.json").write_text(json.dumps(full))
        # the saved model belongs to this run: keep a copy for repeated incremental runs
        shutil.copytree(base / "artefacts", root / "artefacts_before", dirs_exist_ok=True)
        land_late_files(base / "landing", root / LATE_DIR)
        print(f"ingest of the new rows: {run_child(INGEST, str(base))['ingest_s']:.1f}s")
    full = json.loads((root / "full_before.json").read_text())
    runs = []
    for _ in range(max(1, args.repeat)):
        shutil.copytree(root / "artefacts_before", base / "artefacts", dirs_exist_ok=True)
        _copy(root / "before.duckdb", root / "incremental.duckdb")
        runs.append(run_child(RESOLVE, str(base), str(root / "incremental.duckdb"), "1",
                           "1" if args.compare else "0"))
    inc = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    if len(runs) > 1:
        walls = ", ".join(f"{r['wall_s']:.1f}s" for r in runs)
        print(f"incremental runs: {walls} (median shown)")
    existing = sum(full["figures"]["rows_in"].values())
    new = sum(inc["figures"]["rows_in"].values())
    print(f"incremental resolve on {os.cpu_count()} cores (load average now "
          f"{os.getloadavg()[0]:.1f}): {new:,} new source records against "
          f"{existing:,} resolved ({full['figures']['customers']:,} customers)")
    _print_run("full (before)", full)
    _print_run("incremental", inc)
    f = inc["figures"]
    print(f"  new identity records {f['new_records']:,}; attached to existing customers "
          f"{f['attached_records']:,}; new customers {f['ids']['created']:,}; "
          f"customers re-clustered {f['customers_touched']:,} "
          f"({f['records_reclustered']:,} identity records)")
    print(f"  Splink: {f['model']['new_records']:,} new vs {f['model']['candidates']:,} "
          f"candidates -> {f['model']['links']:,} links")
    print(f"  incremental / full (before) time: {inc['wall_s'] / full['wall_s']:.1%}  "
          f"(records/s {new / inc['wall_s']:,.0f})")
    if args.compare:
        # on a copy of the warehouse before: ids carry over the same way, so they compare
        _copy(root / "before.duckdb", root / "full_after.duckdb")
        both = run_child(RESOLVE, str(base), str(root / "full_after.duckdb"), "0", "1")
        shutil.copytree(root / "artefacts_before", base / "artefacts", dirs_exist_ok=True)
        _print_run("full (all)", both)
        print(f"  incremental / full (all) time: {inc['wall_s'] / both['wall_s']:.1%} "
              f"(load average now {os.getloadavg()[0]:.1f})")
        agreement = run_child(AGREEMENT, str(root / "incremental.duckdb"),
                           str(root / "full_after.duckdb"))
        print(f"  incremental vs full on all data: pairwise P/R/F1 "
              f"{agreement['precision']:.4f} / {agreement['recall']:.4f} / "
              f"{agreement['f1']:.4f}; same customer id for "
              f"{agreement['same_customer_id_share']:.2%} of source records")
        for name, result in (("incremental", inc), ("full (all)", both)):
            e = result["evaluation"]
            print(f"  vs truth, {name:<12} P/R/F1 {e['precision']:.4f} / {e['recall']:.4f} / "
                  f"{e['f1']:.4f}")


if __name__ == "__main__":
    main()
