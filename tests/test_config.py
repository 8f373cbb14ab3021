"""The one config file: validation, path resolution and environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cdp.config import CANONICAL_FIELDS, ConfigError, load_settings
from tests.conftest import PROJECT_CONFIG, write_config


def test_project_config_loads_with_every_channel() -> None:
    settings = load_settings(PROJECT_CONFIG, env={})
    assert settings.engine == "duckdb"
    assert set(settings.channels) == {
        "web_orders", "app_events", "pos_transactions", "email_subscribers", "sms_contacts",
        "call_center_tickets", "loyalty_members", "carts",
    }
    for name, channel in settings.channels.items():
        assert channel.name == name
        assert channel.primary_key in channel.columns
        assert set(channel.identity) <= set(CANONICAL_FIELDS)


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), env={})
    paths = settings.resolved_paths
    assert paths.data_dir == tmp_path / "data"
    assert paths.landing == tmp_path / "data" / "landing"
    assert paths.raw == tmp_path / "data" / "lake" / "raw"
    assert paths.warehouse == tmp_path / "data" / "warehouse.duckdb"


def test_relative_data_dir_is_taken_from_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(PROJECT_CONFIG.read_text(encoding="utf-8"))
    (tmp_path / "proj").mkdir()
    config = tmp_path / "proj" / "cdp.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(config, env={})
    assert settings.resolved_paths.warehouse == tmp_path / "proj" / "data" / "warehouse.duckdb"


def test_environment_overrides_shorthand_and_nested(tmp_path: Path) -> None:
    env = {
        "CDP_ENGINE": "spark",
        "CDP_DATA_DIR": str(tmp_path / "elsewhere"),
        "CDP__IDENTITY__MATCH_THRESHOLD": "0.8",
        "CDP__SPARK__CONF__SPARK.SQL.SHUFFLE.PARTITIONS": "4",
    }
    settings = load_settings(write_config(tmp_path), env=env)
    assert settings.engine == "spark"
    assert settings.resolved_paths.lake == tmp_path / "elsewhere" / "lake"
    assert settings.identity.match_threshold == 0.8
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "4"


def test_spark_conf_keys_from_environment_keep_their_case(tmp_path: Path) -> None:
    # Spark conf keys are case-sensitive: a lower-cased autobroadcastjointhreshold is ignored
    env = {
        "CDP__SPARK__CONF__spark__sql__autoBroadcastJoinThreshold": "-1",  # shell-safe form
        "CDP__SPARK__CONF__spark.driver.extraJavaOptions": "-Xss4m",  # dots written as such
        "CDP__SPARK__CONF__spark__executorEnv__PYSPARK_PYTHON": "/opt/py",
        "CDP__SPARK__CONF__SPARK__EXECUTOR__MEMORY": "2g",  # all capitals: read as lower case
    }
    conf = load_settings(write_config(tmp_path), env=env).spark.conf
    assert conf["spark.sql.autoBroadcastJoinThreshold"] == "-1"
    assert conf["spark.driver.extraJavaOptions"] == "-Xss4m"
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == "/opt/py"
    assert conf["spark.executor.memory"] == "2g"
    assert not any(k != k.strip() or "__" in k for k in conf)


def test_config_file_from_environment_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CDP_CONFIG", str(write_config(tmp_path)))
    assert load_settings().root == tmp_path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(engine="oracle"), "engine"),
        (lambda d: d["channels"]["web_orders"].update(primary_key="nope"), "nope"),
        (lambda d: d["channels"]["carts"]["identity"].update(shoe_size="item_count"), "shoe_size"),
        (lambda d: d["channels"]["carts"]["identity"].update(email="no_such_col"), "no_such_col"),
        (lambda d: d.update(unknown_key=1), "unknown_key"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path: Path, mutate, message: str) -> None:
    data = yaml.safe_load(PROJECT_CONFIG.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


def test_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "cdp.yaml"
    path.write_text("channels: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, env={})
