"""An Airflow 3 test installation for the whole `tests/airflow` package.

A temporary AIRFLOW_HOME with its own SQLite metadata DB (created like `airflow db migrate`),
the repository's `dags/` as DAGs folder, a temporary cdp.yaml (CDP_CONFIG) whose data lives in
the same temporary folder, and a dbt manifest from `dbt parse` (CDP_DBT_MANIFEST).

Airflow reads its configuration when it is first imported, so this package imports Airflow
only inside fixtures and tests, after the environment below is in place. The fixtures are
package-scoped so the environment (CDP_CONFIG above all) never leaks into other test folders.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdp.config import Settings, load_settings
from tests.conftest import REPO_ROOT, write_config

DAGS_FOLDER = REPO_ROOT / "dags"

# The e2e run syncs to the default file destination and to a webhook whose URL and signing
# secret come from Airflow Variables (AIRFLOW_VAR_*), as in a deployment.
WEBHOOK_URL_VAR = "CDP_TEST_WEBHOOK_URL"
WEBHOOK_SECRET_VAR = "CDP_TEST_WEBHOOK_SECRET"
WEBHOOK_SEGMENTS = ["lapsed_customers", "abandoned_cart"]
ACTIVATION = {
    "destinations": {
        "file": {"type": "file", "format": "csv", "path": "{data_dir}/exports"},
        "crm_webhook": {
            "type": "webhook", "url_env": WEBHOOK_URL_VAR, "secret_env": WEBHOOK_SECRET_VAR,
            "purpose": "none", "segments": WEBHOOK_SEGMENTS,
            "fields": ["customer_id", "email_sha256"], "batch_size": 50,
            "retry": {"attempts": 2, "backoff_base": 0.1, "backoff_max": 0.2, "timeout": 5},
        },
    },
}


@dataclass
class AirflowEnv:
    folder: Path
    config: Path
    manifest: Path

    @property
    def settings(self) -> Settings:
        return load_settings(self.config)


def parse_manifest(settings: Settings, target: Path) -> Path:
    """`dbt parse` of the project into `target` (what the README asks a deployment to run)."""
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    result = dbtRunner().invoke([
        "parse", "--project-dir", project, "--profiles-dir", project,
        "--target", settings.warehouse.target, "--target-path", str(target),
        "--log-path", str(target / "logs"), "--log-level", "none",
        "--no-send-anonymous-usage-stats",
    ])
    assert result.success, f"dbt parse failed: {result.exception}"
    return target / "manifest.json"


@pytest.fixture(scope="package")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowEnv]:
    if "airflow.configuration" in sys.modules:
        pytest.fail("Airflow was imported before tests/airflow set AIRFLOW_HOME; "
                    "import it inside tests only")
    folder = tmp_path_factory.mktemp("airflow")
    config = write_config(folder, activation=ACTIVATION)
    settings = load_settings(config, env={})
    manifest = parse_manifest(settings, folder / "dbt_target")
    home = folder / "airflow_home"
    home.mkdir()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__COSMOS__CACHE_DIR": str(folder / "cosmos_cache"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "CDP_CONFIG": str(config),
        "CDP_DBT_MANIFEST": str(manifest),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        # Airflow puts the DAG bundle on sys.path (BundleDagBag); plain DagBags need it too.
        patch.syspath_prepend(str(DAGS_FOLDER))
        from airflow.utils import db

        db.upgradedb()  # what `airflow db migrate` runs; creates the schema on an empty DB
        yield AirflowEnv(folder=folder, config=config, manifest=manifest)


@pytest.fixture(scope="package")
def dagbag(airflow_env: AirflowEnv) -> Any:
    """The repository's DAGs folder, parsed once for the package."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER,
                  bundle_name="dags-folder")


def config_with(folder: Path, **changes: Any) -> Path:
    """A variant of the test configuration (e.g. with one more channel) in `folder`."""
    path = write_config(folder, activation=ACTIVATION)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
