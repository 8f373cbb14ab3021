"""`cdp generate`: simulate a population, let each channel record it, write landing files and the
ground truth."""

from __future__ import annotations

import datetime as dt
import fnmatch
import gc
import random
import re
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cdp.config import Channel, Settings
from cdp.errors import CdpError
from cdp.generate.activity import Planner
from cdp.generate.channels import BUILDERS, OMIT_NULLS, Context
from cdp.generate.ids import OpaqueIds
from cdp.generate.locales import load_locale
from cdp.generate.noise import Noise
from cdp.generate.population import PopulationBuilder
from cdp.generate.render import Renderer
from cdp.generate.stats import Stats
from cdp.generate.writers import ChannelWriter, Spool, TruthWriter, temp_workdir
from cdp.io import atomic_path
from cdp.summary import StepSummary

DEFAULT_AS_OF = dt.date(2026, 11, 1)
WINDOW_DAYS = 548  # about 18 months of history before as_of
SPOOL_BUDGET = 50_000  # rows per channel held in memory before spilling a sorted run


def generate(settings: Settings, people: int = 2000, seed: int = 42, noise: float = 1.0,
             as_of: dt.date = DEFAULT_AS_OF) -> StepSummary:
    """Generate demo data for every configured channel the generator knows, plus ground truth.

    Deterministic: the same `people`, `seed`, `noise` and `as_of` give byte-identical files.
    `noise` scales every corruption (0 clean, 1 realistic, 2 very dirty). Files are named with
    the `as_of` date and replaced atomically; earlier generated files of a channel are removed.
    """
    # Millions of small tuples and no reference cycles: the cyclic collector would rescan the
    # growing buffers again and again (superlinear time), so it rests while we generate.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(settings, people, seed, noise, as_of)
    finally:
        if was_enabled:
            gc.enable()


def _generate(settings: Settings, people: int, seed: int, noise: float,
              as_of: dt.date) -> StepSummary:
    if people < 1:
        raise CdpError(f"--people must be at least 1 (got {people})")
    if noise < 0:
        raise CdpError(f"--noise must be 0 or more (got {noise})")
    started = time.perf_counter()
    channels = [c for name, c in settings.channels.items() if name in BUILDERS]
    skipped = [name for name in settings.channels if name not in BUILDERS]
    if not channels:
        raise CdpError("cdp.yaml declares none of the channels the generator can produce: "
                       + ", ".join(BUILDERS))
    try:
        data = load_locale(settings.locale, settings.default_region, seed)
    except AttributeError as exc:
        raise CdpError(f"locale '{settings.locale}' is not a Faker locale") from exc

    population = PopulationBuilder(data, random.Random(f"population:{seed}"), noise, as_of,
                                   WINDOW_DAYS)
    planner = Planner(data, random.Random(f"behaviour:{seed}"), noise, as_of, WINDOW_DAYS, seed)
    record_rng = random.Random(f"records:{seed}")
    noisy = Noise(record_rng, noise, settings.default_region, data.turkish)
    salt = seed % 9973
    ids = {"subscriber": OpaqueIds("S", 9, salt + 11), "contact": OpaqueIds("C", 9, salt + 12),
           "ticket": OpaqueIds("TCK", 8, salt + 13)}
    context = Context(record_rng, noisy, data, Renderer(noisy, data), planner, ids)
    paths = settings.resolved_paths
    stats = Stats(as_of)
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    written: list[Path] = []
    with ExitStack() as stack:
        # Sorted runs go beside the data, not into landing where a loader might look.
        workdir = Path(stack.enter_context(temp_workdir(paths.data_dir)))
        spools = {c.name: Spool(c, SPOOL_BUDGET, workdir) for c in channels}
        stack.enter_context(progress)
        task = progress.add_task("people", total=people)
        households = 0
        for members in population.households(people):
            households += 1
            for person in members:
                plan = planner.plan(person)
                stats.add_person(person, plan)
                for channel in channels:
                    spool = spools[channel.name]
                    for row in BUILDERS[channel.name](person, plan, context):
                        spool.add(row, person.entity_id)
            progress.advance(task, len(members))

        with atomic_path(paths.truth) as truth_tmp:
            truth = TruthWriter(truth_tmp)
            try:
                for channel in channels:
                    written.append(_write_channel(channel, spools[channel.name], truth,
                                                  landing_file(paths.landing, channel, as_of),
                                                  progress))
            finally:
                truth.close()

    seconds = time.perf_counter() - started
    rows = {c.name: spools[c.name].count for c in channels}
    summary = StepSummary("generate")
    summary.add("people", people).add("households", households)
    summary.add("twin pairs", population.twins_made)
    summary.add("files written", len(written))
    for name, count in rows.items():
        summary.add(f"rows {name}", count)
    summary.add("truth rows", truth.count)
    summary.add("seconds", round(seconds, 1))
    summary.notes.append(f"landing: {paths.landing}; truth: {paths.truth}")
    summary.notes.append(f"locale {settings.locale}, seed {seed}, noise {noise}, "
                         f"as of {as_of.isoformat()}")
    if skipped:
        summary.notes.append("no generator for channel(s) " + ", ".join(skipped) + "; skipped")
    summary.figures = {
        "people": people, "households": households, "twin_pairs": population.twins_made,
        "files": [str(p) for p in written], "files_written": len(written), "rows": rows,
        "total_rows": sum(rows.values()), "truth_rows": truth.count, "truth_path": str(paths.truth),
        "seconds": round(seconds, 2), "seed": seed, "noise": noise,
        "as_of": as_of.isoformat(), **stats.figures(),
    }
    return summary


def _write_channel(channel: Channel, spool: Spool, truth: TruthWriter, target: Path,
                   progress: Progress) -> Path:
    """The channel's rows in event-time order to `target` (atomically), each also to truth."""
    bar = progress.add_task(channel.name, total=spool.count)
    pk = list(channel.columns).index(channel.primary_key)
    omit = channel.name in OMIT_NULLS
    with atomic_path(target) as tmp:
        writer = ChannelWriter(channel, tmp)
        try:
            for done, (_, _, values, entity_id) in enumerate(spool.sorted(), 1):
                writer.write(values, omit_nulls=omit)
                truth.write(channel.name, str(values[pk]), entity_id)
                if done % 5000 == 0:
                    progress.update(bar, completed=done)
        finally:
            writer.close()
    progress.update(bar, completed=spool.count)
    _remove_stale(target, channel)
    return target


def landing_file(landing: Path, channel: Channel, as_of: dt.date) -> Path:
    """`<landing>/<channel glob with * replaced by <channel>_<yyyymmdd>>`."""
    pattern = Path(channel.path)
    name = pattern.name
    stem = f"{channel.name}_{as_of:%Y%m%d}"
    if "*" in name:
        name = name.replace("*", stem, 1).replace("*", "")
    name = re.sub(r"[?\[\]]", "_", name)
    target = landing / pattern.parent / name
    if not fnmatch.fnmatch(str(Path(pattern.parent) / name), channel.path):
        raise CdpError(f"channel {channel.name}: cannot name a file matching path "
                       f"'{channel.path}'")
    return target


def _remove_stale(target: Path, channel: Channel) -> None:
    """Remove files an earlier run generated for other dates (`<channel>_<8 digits>.<ext>`), so the
    landing area holds one consistent population with one truth file. Other files are kept."""
    own = re.compile(rf"{re.escape(channel.name)}_\d{{8}}{re.escape(target.suffix)}$")
    for path in target.parent.iterdir():
        if path != target and own.match(path.name):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
