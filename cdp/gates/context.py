"""Great Expectations set-up: one ephemeral context per gate run, pandas data, Data Docs on disk.

- Suites, validation definitions and checkpoints live in memory: they are rebuilt from
  `expectations/*.json` every run, so the JSON files are the only source of truth.
- Validation results are kept on disk in `{artefacts}/gx/validations/` (the last
  `KEEP_RESULTS_PER_SUITE` runs of each suite) through `MaskedValidationResultsStore`, which
  masks sample values before anything is written: neither the stored results nor the Data Docs
  rendered from them hold raw PII.
- Data Docs (HTML) are built into `{artefacts}/data_docs/`; open `index.html`.

Data reaches GX as pandas DataFrames (a pandas data source with one DataFrame asset per suite):
the frames are built with DuckDB from the lake and the warehouse, and there is no DuckDB data
source in GX core (its SQL data source would need the duckdb-engine SQLAlchemy dialect).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.config import Settings
from cdp.gates.masking import mask_validation_dict
from cdp.gates.suites import STAGES, Suite, for_channel, load_suites

KEEP_RESULTS_PER_SUITE = 20
PARTIAL_UNEXPECTED_COUNT = 10
DOCS_SITE = "cdp_data_docs"
RESULTS_STORE = "cdp_validation_results"

# GX is chatty at INFO/WARNING about things that are not the user's business (analytics, tqdm).
logging.getLogger("great_expectations").setLevel(logging.ERROR)

import great_expectations as gx  # noqa: E402  (after the logger level, which GX reads at import)
from great_expectations.checkpoint import Checkpoint  # noqa: E402
from great_expectations.core.expectation_validation_result import (  # noqa: E402
    ExpectationSuiteValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.store import ValidationResultsStore  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
)
from great_expectations.util import convert_to_json_serializable  # noqa: E402


class MaskedValidationResultsStore(ValidationResultsStore):
    """A validation results store that masks sample values before they reach the backend."""

    def serialize(self, value: Any) -> Any:  # type: ignore[override]
        masked = convert_to_json_serializable(mask_validation_dict(value.to_json_dict()))
        return self._expectationSuiteValidationResultSchema.dumps(masked, indent=2,
                                                                  sort_keys=True)


def all_suites(settings: Settings) -> list[Suite]:
    """Every suite as it runs: the raw template once per channel, the others as they are."""
    suites = []
    for stage in STAGES:
        for suite in load_suites(settings, stage):
            if stage == "raw":
                suites += [for_channel(suite, c) for c in settings.channels.values()]
            else:
                suites.append(suite)
    return suites


def docs_dir(settings: Settings) -> Path:
    return settings.resolved_paths.artefacts / "data_docs"


def results_dir(settings: Settings) -> Path:
    return settings.resolved_paths.artefacts / "gx" / "validations"


class GateContext:
    """One GX context for one gate run: validate suites on DataFrames, then build Data Docs."""

    def __init__(self, settings: Settings) -> None:
        self.docs = docs_dir(settings)
        self.results = results_dir(settings)
        self.results.mkdir(parents=True, exist_ok=True)
        defaults = InMemoryStoreBackendDefaults()
        # Under its own name: GX re-adds a default store for any missing *class* name, and
        # would otherwise overwrite ours under the default store name.
        defaults.stores[RESULTS_STORE] = {
            "class_name": MaskedValidationResultsStore.__name__,
            "module_name": __name__,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(self.results)},
        }
        config = DataContextConfig(
            store_backend_defaults=defaults,
            validation_results_store_name=RESULTS_STORE,
            data_docs_sites={DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(self.docs)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }},
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.datasource = self.context.data_sources.add_pandas("cdp")
        # Every suite of every stage, not only this run's: the Data Docs index drops the pages
        # of suites missing from the expectations store.
        self._suites: dict[str, Any] = {
            suite.name: self.context.suites.add(gx.ExpectationSuite(**suite.definition))
            for suite in all_suites(settings)
        }
        self._used: set[str] = set()
        self._keys: list[Any] = []
        self._count = 0

    def validate(self, suite: Suite, frame: pd.DataFrame, parameters: dict[str, Any],
                 run_name: str) -> ExpectationSuiteValidationResult:
        """Run `suite` on `frame` through a validation definition and a checkpoint."""
        self._count += 1
        name = f"{suite.name}-{self._count}"
        gx_suite = self._suites.get(suite.name)
        if gx_suite is None:
            gx_suite = self.context.suites.add(gx.ExpectationSuite(**suite.definition))
            self._suites[suite.name] = gx_suite
        self._used.add(suite.name)
        asset = self.datasource.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe("whole")
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
        result_format: dict[str, Any] = {"result_format": "SUMMARY",
                                         "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}
        index = [c for c in suite.index_columns if c in frame.columns]
        if index:
            result_format["unexpected_index_column_names"] = index
        checkpoint = self.context.checkpoints.add(Checkpoint(
            name=name, validation_definitions=[definition], result_format=result_format))
        run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas/numpy deprecations inside GX metrics
            outcome = checkpoint.run(batch_parameters={"dataframe": frame},
                                     expectation_parameters=parameters, run_id=run_id)
        key, result = next(iter(outcome.run_results.items()))
        self._keys.append(key)
        return result

    def build_docs(self) -> Path:
        """Build Data Docs for this run's results (and the index over every kept result);
        prune results beyond the last KEEP_RESULTS_PER_SUITE of each suite. Returns index.html."""
        _prune(self.results, self.docs)
        kept: list[Any] = [k for k in self._keys if _result_file(self.results, k).exists()]
        index = self.docs / "index.html"
        if kept or not index.exists():  # nothing new: the site is up to date
            kept += [ExpectationSuiteIdentifier(name=name) for name in self._used]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.context.build_data_docs(site_names=[DOCS_SITE],
                                             resource_identifiers=kept or None)
        return index


def _result_file(root: Path, key: Any) -> Path:
    *folders, name = key.to_tuple()
    return root.joinpath(*folders, f"{name}.json")  # names hold dots: no with_suffix


def _prune(results: Path, docs: Path) -> None:
    """Keep the newest results per suite; remove older ones and their Data Docs pages.

    Stored as `<suite parts...>/<run_name>/<run_time>/<batch>.json`: the suite is everything
    above the last three levels, run times sort chronologically.
    """
    by_suite: dict[tuple[str, ...], list[tuple[str, Path]]] = {}
    for path in results.rglob("*.json"):
        parts = path.relative_to(results).parts
        if len(parts) < 4:
            continue
        by_suite.setdefault(parts[:-3], []).append((parts[-2], path))
    for entries in by_suite.values():
        entries.sort(key=lambda e: e[0], reverse=True)
        for _, path in entries[KEEP_RESULTS_PER_SUITE:]:
            relative = path.relative_to(results)
            path.unlink(missing_ok=True)
            page = (docs / "validations" / relative).with_suffix(".html")
            page.unlink(missing_ok=True)
            for folder in (path.parent, page.parent):
                if folder.is_dir() and not any(folder.iterdir()):
                    shutil.rmtree(folder, ignore_errors=True)
