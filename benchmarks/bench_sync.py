"""Benchmark: diff, hash and batch a 1M-member segment for Meta (full multi-key schema).

Builds a throwaway warehouse with N generated customers in one segment, then times the
activation engine's own steps, without network:
  hash   read members + profiles, normalise and SHA-256 every key, fingerprint  (_cand)
  diff   compare with the sync state                                            (_plan)
  batch  stage each batch in the sync state, build Meta's request body (the JSON payload
         field, as sent), settle it as accepted (state + log), 10,000 rows per batch
and a second, incremental run where 5% of the segment changed (hash + diff + batch).
Prints wall and CPU seconds per step and peak resident memory. Target: first run < 30 s on 2 cores.

    .venv/bin/python benchmarks/bench_sync.py [--members 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cdp.activation import engine  # noqa: E402
from cdp.activation.config import load_activation_config  # noqa: E402
from cdp.activation.destinations import make_adapter  # noqa: E402
from cdp.activation.destinations.base import BatchResult  # noqa: E402
from cdp.activation.source import Source  # noqa: E402
from cdp.activation.state import Store  # noqa: E402
from cdp.config import load_settings  # noqa: E402

SEGMENT = "bench_segment"


def make_settings(folder: Path):
    data = yaml.safe_load((ROOT / "cdp.yaml").read_text(encoding="utf-8"))
    data["paths"]["data_dir"] = str(folder / "data")
    data["activation"] = {"destinations": {"meta": {
        "type": "meta", "base_url": "http://127.0.0.1:9/v21.0",
        "audiences": {SEGMENT: "1200000000000"}}}}
    path = folder / "cdp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_settings(path, env={})


def make_warehouse(path: Path, members: int) -> None:
    """N customers with realistic repetition: ~3,000 first names, ~20,000 last names, 81
    cities, unique emails and phones; 90% have ads consent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("set enable_progress_bar = false")
    con.execute("""
        create table dim_customers as
        select
            'C' || lpad(cast(i as varchar), 8, '0') as customer_id,
            'Çağla' || (hash(i) % 3000) as first_name,
            'Şahin' || (hash(i * 7) % 20000) as last_name,
            'user' || i || '@example.com' as email,
            '+90532' || lpad(cast(i as varchar), 7, '0') as phone,
            date '1950-01-01' + cast(hash(i * 13) % 20000 as integer) as birth_date,
            case when i % 2 = 0 then 'F' else 'M' end as gender,
            'İstanbul ' || (i % 81) as city,
            cast(34000 + i % 900 as varchar) as postcode,
            'TR' as country,
            i % 3 = 0 as email_opt_in,
            i % 5 = 0 as sms_opt_in,
            i % 10 <> 0 as ads_opt_in
        from range(?) t(i)
    """, [members])
    con.execute(f"""
        create table segment_membership as
        select '{SEGMENT}' as segment, customer_id, date '2024-01-01' as since
        from dim_customers
    """)
    con.close()


class Clock:
    """Wall and CPU seconds (CPU of all this process's threads, DuckDB's included): on a
    shared machine the CPU figure is the one that does not depend on the neighbours."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def split(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return result


def run_once(con, store, source, adapter, settings, run, label: str) -> dict[str, tuple]:
    pair = engine.PairSync(con, store, source, adapter, SEGMENT, run, settings.default_region)
    times: dict[str, tuple[float, float]] = {}
    clock = Clock()
    pair.candidates()
    times["hash"] = clock.split()
    pair.plan()
    times["diff"] = clock.split()
    rows = batches = body_bytes = 0
    for operation in ("remove", "add"):
        for batch, all_new in pair.fresh_batches(operation, pair.batch_count(operation)):
            body_bytes += len(adapter.body(batch))
            pair.settle(batch, BatchResult.ok(len(batch)), False, all_new)
            rows += len(batch)
            batches += 1
    times["batch"] = clock.split()
    times["total"] = tuple(sum(t[i] for t in times.values()) for i in (0, 1))
    clock.split()
    con.execute("checkpoint")  # engine.sync ends with one: the stored payloads get compressed
    times["checkpoint"] = clock.split()
    report = pair.report
    print(f"{label}: members {report.members:,}, eligible {report.eligible:,}, "
          f"rows sent {rows:,} in {batches} batches, request bodies {body_bytes / 1e6:,.0f} MB")
    for step, what in (("hash", "read members, normalise + SHA-256 every key"),
                       ("diff", "compare with the sync state"),
                       ("batch", "stage, build request body, settle; per 10,000 rows"),
                       ("total", "diff + hash + batch"),
                       ("checkpoint", "then DuckDB compresses the stored state (end of sync)")):
        wall, cpu = times[step]
        print(f"  {step:10s} {wall:6.1f} s wall {cpu:6.1f} s cpu   {what}")
    print(f"  peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        t0 = time.perf_counter()
        make_warehouse(settings.resolved_paths.warehouse, args.members)
        print(f"setup: {args.members:,} customers generated in {time.perf_counter() - t0:.1f} s;"
              f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        config = load_activation_config(settings)
        adapter = make_adapter(config.destinations["meta"], settings)
        con = duckdb.connect(str(settings.resolved_paths.warehouse))
        con.execute("set enable_progress_bar = false")
        con.execute("set checkpoint_threshold = '1GB'")  # as engine.sync does
        source = Source(con)
        store = Store(con, dry_run=False)
        con.execute(f"create or replace temp table _erased as {source.erased_sql()}")
        run = engine.Run("bench", engine.datetime.now(), False, False, 0)
        first = run_once(con, store, source, adapter, settings, run,
                         "first run (everything is an add)")
        # 5% churn: 2.5% leave, 2.5% new members, and the consent flag of 1% flips.
        n = args.members
        con.execute("delete from segment_membership where hash(customer_id) % 40 = 0")
        con.execute(f"""insert into dim_customers select 'N' || i, 'Ayşe', 'Yılmaz',
                    'new' || i || '@example.com', '+90533' || lpad(cast(i as varchar), 7, '0'),
                    date '1990-01-01', 'F', 'Ankara', '06000', 'TR', true, true, true
                    from range({n // 40}) t(i)""")
        con.execute(f"insert into segment_membership select '{SEGMENT}', 'N' || i, "
                    f"date '2024-02-01' from range({n // 40}) t(i)")
        con.execute("update dim_customers set ads_opt_in = not ads_opt_in "
                    "where hash(customer_id) % 100 = 1")
        second = run_once(con, store, source, adapter, settings, run,
                          "second run (5% churn)")
        con.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (first_wall, first_cpu), (second_wall, second_cpu) = first["total"], second["total"]
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"RESULT {args.members:,} members, Meta {len(adapter.keys)} keys: diff + hash + "
          f"batch, first run {first_wall:.1f} s wall / {first_cpu:.1f} s cpu (target < 30 s); "
          f"incremental {second_wall:.1f} s wall / {second_cpu:.1f} s cpu; state checkpoint "
          f"{first['checkpoint'][0]:.1f} s wall; peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
