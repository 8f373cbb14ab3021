"""Late arrivals for generated demo data: hold back some rows of the landing files and land
them later, as a channel re-delivering or catching up would. Incremental resolution is tested and
benchmarked this way (tests/identity/test_incremental.py, tests/spark/, bench_incremental.py).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq


def split_landing(landing: Path, holdback: Path, rows: int, seed: int = 7) -> int:
    """Move `rows` randomly chosen data rows of the landing files into files of the same
    channel folders under `holdback` (named `<stem>_late<suffix>`); returns the rows moved.

    Text files are split by line (header kept in both), bytes untouched, so encodings and line
    endings survive; CSV files with quoted fields are refused (a quoted newline would be cut).
    """
    files = sorted(p for p in landing.rglob("*") if p.is_file()
                   and p.suffix in (".csv", ".jsonl", ".parquet"))
    counts = {p: _data_rows(p) for p in files}
    total = sum(counts.values())
    if rows >= total:
        raise ValueError(f"cannot hold back {rows} of {total} rows")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(total), rows))
    moved = 0
    start = 0
    for path in files:
        n = counts[path]
        picked = {i - start for i in chosen if start <= i < start + n}
        start += n
        if not picked:
            continue
        target = holdback / path.parent.relative_to(landing) / f"{path.stem}_late{path.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            keep = [i for i in range(table.num_rows) if i not in picked]
            pq.write_table(table.take(sorted(picked)), target)
            pq.write_table(table.take(keep), path)
        else:
            lines = path.read_bytes().splitlines(keepends=True)
            header = lines[:1] if path.suffix == ".csv" else []
            body = lines[len(header):]
            if path.suffix == ".csv" and any(b'"' in line for line in body):
                raise ValueError(f"{path} has quoted fields: split it another way")
            target.write_bytes(b"".join(header + [body[i] for i in sorted(picked)]))
            path.write_bytes(b"".join(header + [line for i, line in enumerate(body)
                                                if i not in picked]))
        moved += len(picked)
    return moved


def _data_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    lines = path.read_bytes().splitlines()
    return len(lines) - (1 if path.suffix == ".csv" else 0)


def land_late_files(landing: Path, holdback: Path) -> None:
    """Move the held-back files into the landing area (the next ingest picks them up)."""
    for path in sorted(holdback.rglob("*")):
        if path.is_file():
            target = landing / path.relative_to(holdback)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)
