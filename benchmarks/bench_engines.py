"""Benchmark the two engines on the same data: ingest and resolve on DuckDB and on Spark.

    .venv/bin/python benchmarks/bench_engines.py              # 10k and 100k records
    .venv/bin/python benchmarks/bench_engines.py 10000 --engines spark --steps resolve \
        --conf spark.sql.shuffle.partitions=1 --env CDP_SPARK_MATERIALISE=checkpoint

For each size, demo data of about RECORDS source records is generated once under --workdir
(landing files). Then, for each engine, in a fresh child process each (so peak memory is its
own, and Spark's JVM start is counted): ingest of the landing files into an empty lake, and a
first resolve of that lake. Prints wall time per phase (and the Spark jobs each launched), CPU
time (the Python process plus the local Spark JVM; Spark's Python workers on a row of their
own) and peak memory (the Python process plus the JVM), records/s, and the
Spark / DuckDB ratio. Asserts nothing.

`--conf key=value` (repeatable) sets Spark conf on top of cdp.yaml's; `--env KEY=VALUE` sets
environment variables of the children (CDP_SPARK_MATERIALISE, CDP_SPARK_SPLINK_LINEAGE): that
is how each tuning knob was measured (jobs/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import yaml

try:  # run as a script: this folder is on sys.path
    from _child import run_child
except ImportError:  # run as a module: python -m benchmarks.bench_engines
    from benchmarks._child import run_child

REPO = Path(__file__).resolve().parents[1]
RECORDS_PER_PERSON = 12.2  # source records per generated person (all channels)

PREPARE = """
import json, sys
from cdp.config import load_settings
settings = load_settings("cdp.yaml", env={"CDP_DATA_DIR": sys.argv[1]})
if not settings.resolved_paths.truth.exists():
    from cdp.generate import generate
    generate(settings, people=int(sys.argv[2]), seed=int(sys.argv[3]))
print(json.dumps({}))
"""

# argv: config file, step (ingest | resolve)
STEP = """
import json, os, resource, sys, time
from cdp.config import load_settings
config, step = sys.argv[1:3]
settings = load_settings(config, env={})
engine = settings.engine
started = time.perf_counter()
if step == "ingest":
    from cdp.ingest import ingest
    figures = ingest(settings).figures
    records = figures["rows_received"]
    phases = {}
else:
    from identity import resolve
    if engine == "spark":
        # Spark jobs launched per phase: job ids are numbered in order, so the first id of the
        # next phase minus the first of this one (a measure of per-query overhead)
        import contextlib
        from pyspark import SparkContext
        timer_cls = sys.modules["identity.resolve"].PhaseTimer
        original = timer_cls.phase

        def next_job_id():
            sc = SparkContext._active_spark_context
            ids = sc.statusTracker().getJobIdsForGroup(None) if sc else []
            return max(ids) + 1 if ids else 0

        @contextlib.contextmanager
        def counted(self, name):
            first = next_job_id()
            with original(self, name):
                yield
            jobs[name] = jobs.get(name, 0) + next_job_id() - first

        jobs = {}
        timer_cls.phase = counted
    figures = resolve(settings).figures
    records = sum(figures["rows_in"].values())
    phases = figures["seconds"]
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
jvm_mb = 0.0
worker_cpu = 0.0
if engine == "spark":
    from pyspark import SparkContext
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if proc is not None:  # the JVM of a local master is this process's child
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmHWM:"):
                jvm_mb = int(line.split()[1]) / 1024
        # CPU of the JVM itself, and of the Python workers: the JVM's descendants (its daemon
        # and the workers the daemon forks; a worker that exited is in its parent's children's
        # time). /proc/<pid>/stat after the name: 1 ppid, 11-12 own time, 13-14 children's.
        parents, own, children = {}, {}, {}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(pid)] = int(fields[1])
            own[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
            children[int(pid)] = (int(fields[13]) + int(fields[14])) / tick
        cpu += own.get(proc.pid, 0.0)

        def below_jvm(pid):
            while pid in parents and pid != proc.pid:
                pid = parents[pid]
            return pid == proc.pid

        worker_cpu = sum(own[pid] + children[pid] for pid in own
                         if pid != proc.pid and below_jvm(pid))
py_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "worker_cpu_s": worker_cpu,
                  "records": records, "phases": phases,
                  "jobs": globals().get("jobs", {}),
                  "python_mb": py_mb, "jvm_mb": jvm_mb,
                  "customers": figures.get("customers"),
                  "loaded": figures.get("rows_loaded")}))
"""


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def _config(data: Path, landing: str, engine: str, conf: dict[str, str]) -> Path:
    """cdp.yaml with the data directory, landing folder, engine and Spark conf of one run
    (a file, so the children's configuration is on disk to inspect)."""
    config = yaml.safe_load((REPO / "cdp.yaml").read_text(encoding="utf-8"))
    config["engine"] = engine
    config["paths"].update(data_dir=str(data), landing=landing)
    config["spark"]["conf"] = {**config["spark"].get("conf", {}), **conf}
    config.setdefault("warehouse", {})["dbt_project_dir"] = str(REPO / "dbt")
    data.mkdir(parents=True, exist_ok=True)
    path = data.parent / f"{data.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def bench(records: int, engines: list[str], workdir: Path, seed: int, conf: dict[str, str],
          env: dict[str, str], steps: list[str]) -> dict[str, dict[str, dict]]:
    people = max(1, math.ceil(records / RECORDS_PER_PERSON))
    source = workdir / f"records{records}_seed{seed}"
    run_child(PREPARE, str(source), str(people), str(seed))
    landing = str(source / "landing")
    results: dict[str, dict[str, dict]] = {}
    for engine in engines:
        data = workdir / f"records{records}_seed{seed}_{engine}"
        results[engine] = {}
        for step in steps:
            if step == "ingest":
                shutil.rmtree(data, ignore_errors=True)
            elif not (data / "lake").exists():
                raise SystemExit(f"no lake at {data}: run the ingest step first")
            else:  # a first resolve each time: no identity state from an earlier run
                (data / "warehouse.duckdb").unlink(missing_ok=True)
                shutil.rmtree(data / "artefacts", ignore_errors=True)
            config = _config(data, landing, engine, conf)
            results[engine][step] = run_child(STEP, str(config), step, env=env)
    return results


def report(records: int, results: dict[str, dict[str, dict]]) -> None:
    engines = list(results)
    print(f"\n== about {records:,} source records, {os.cpu_count()} cores (shared machine) ==")
    header = f"{'':<24}" + "".join(f"{e:>12}" for e in engines)
    if len(engines) == 2:
        header += f"{'ratio':>10}"
    print(header)

    def row(label: str, values: list[float], fmt: str = "{:>11.1f}s") -> None:
        line = f"{label:<24}" + "".join(fmt.format(v) for v in values)
        if len(values) == 2 and values[0]:
            line += f"{values[1] / values[0]:>9.1f}x"
        print(line)

    steps = list(next(iter(results.values())))
    for step in steps:
        first = results[engines[0]][step]
        print(f"{step} ({first['records']:,} records)")
        for phase in first["phases"]:
            row(f"  {phase}", [results[e][step]["phases"].get(phase, 0.0) for e in engines])
            jobs = [results[e][step].get("jobs", {}).get(phase) for e in engines]
            if any(jobs):
                print(f"{'    Spark jobs':<24}" + "".join(
                    f"{j:>12,}" if j is not None else f"{'':>12}" for j in jobs))
        row("  wall", [results[e][step]["wall_s"] for e in engines])
        row("  cpu (python+jvm)", [results[e][step]["cpu_s"] for e in engines])
        row("  cpu (python workers)", [results[e][step].get("worker_cpu_s", 0.0)
                                       for e in engines])
        row("  records/s", [results[e][step]["records"] / results[e][step]["wall_s"]
                            for e in engines], "{:>12,.0f}")
        row("  peak MB (python+jvm)", [results[e][step]["python_mb"] + results[e][step]["jvm_mb"]
                                       for e in engines], "{:>12,.0f}")
        key = "customers" if step == "resolve" else "loaded"
        print(f"  {key:<22}" + "".join(f"{results[e][step][key] or 0:>12,}" for e in engines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--steps", nargs="+", default=["ingest", "resolve"],
                        choices=["ingest", "resolve"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--conf", action="append", default=[], help="Spark conf key=value")
    parser.add_argument("--env", action="append", default=[], help="child env KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "cdp-bench-engines")
    args = parser.parse_args()
    everything = {}
    for records in args.records:
        results = bench(records, args.engines, args.workdir, args.seed, _pairs(args.conf),
                        _pairs(args.env), args.steps)
        report(records, results)
        everything[records] = results
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
