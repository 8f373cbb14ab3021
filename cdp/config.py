"""The one place configuration comes from: `cdp.yaml` plus environment overrides.

Every other module receives a `Settings` object; nothing reads paths, the engine or channel
definitions from constants or the environment on its own.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONFIG_ENV = "CDP_CONFIG"
DEFAULT_CONFIG_NAME = "cdp.yaml"
# Shorthand variables for the overrides people reach for most.
SHORTHAND_ENV = {
    "CDP_DATA_DIR": ("paths", "data_dir"),
    "CDP_ENGINE": ("engine",),
    "CDP_WAREHOUSE": ("paths", "warehouse"),
}
NESTED_ENV_PREFIX = "CDP__"

ColumnType = Literal["string", "integer", "decimal", "boolean", "date", "timestamp"]
CANONICAL_FIELDS = (
    "first_name", "last_name", "full_name", "email", "phone", "birth_date", "address", "city",
    "postcode", "country", "loyalty_id", "login_id", "device_id", "gender",
    "email_opt_in", "sms_opt_in", "ads_opt_in",
)


class ConfigError(ValueError):
    """The configuration is missing or invalid; the message says which key and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Column(_Strict):
    type: ColumnType = "string"
    required: bool = False
    format: str | None = None  # strptime pattern for date / timestamp
    decimal_separator: str = "."


class Channel(_Strict):
    name: str = ""
    description: str = ""
    path: str  # glob relative to the landing directory
    format: Literal["csv", "jsonl", "parquet"]
    encoding: str = "utf-8"
    delimiter: str = ","
    schedule: str = "@daily"
    primary_key: str
    event_time: str | None = None
    strict: bool = True  # unknown columns fail the batch when strict
    columns: dict[str, Column]
    identity: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> Channel:
        known = set(self.columns)
        for key in [self.primary_key, self.event_time]:
            if key is not None and key not in known:
                raise ValueError(f"'{key}' is not one of the channel's columns")
        for field, column in self.identity.items():
            if field not in CANONICAL_FIELDS:
                raise ValueError(f"identity field '{field}' is not canonical: {CANONICAL_FIELDS}")
            if column not in known:
                raise ValueError(f"identity.{field} maps to unknown column '{column}'")
        return self


class Paths(_Strict):
    data_dir: Path = Path("data")
    landing: Path = Path("{data_dir}/landing")
    lake: Path = Path("{data_dir}/lake")
    warehouse: Path = Path("{data_dir}/warehouse.duckdb")
    artefacts: Path = Path("{data_dir}/artefacts")
    truth: Path = Path("{data_dir}/truth/ground_truth.csv")

    def resolved(self, root: Path) -> Paths:
        """Absolute paths, with `{data_dir}` expanded and relative paths taken from `root`."""
        data_dir = _absolute(Path(str(self.data_dir)), root)
        values = {"data_dir": data_dir}
        for name in ("landing", "lake", "warehouse", "artefacts", "truth"):
            raw = str(getattr(self, name)).replace("{data_dir}", str(data_dir))
            values[name] = _absolute(Path(raw), root)
        return Paths(**values)

    @property
    def raw(self) -> Path:
        return self.lake / "raw"

    @property
    def quarantine(self) -> Path:
        return self.lake / "quarantine"

    @property
    def meta(self) -> Path:
        return self.lake / "_meta"


class SparkSettings(_Strict):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _as_strings(cls, conf: dict[str, object]) -> dict[str, str]:
        # Spark takes every conf value as a string; YAML and env overrides give ints and bools.
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}


class IngestSettings(_Strict):
    max_field_bytes: int = 1_048_576
    max_quarantine_share: float = 0.5


class IdentitySettings(_Strict):
    identifiers: list[str] = Field(
        default_factory=lambda: ["email", "phone", "loyalty_id", "login_id", "device_id"]
    )
    max_people_per_identifier: int = 3
    junk_values: dict[str, list[str]] = Field(default_factory=dict)
    match_threshold: float = 0.95
    source_trust: list[str] = Field(default_factory=list)
    # Scheduled resolves (`cdp run`, the cdp_identity DAG): "full" every time, or "auto":
    # incremental, with a full run when due (identity/schedule.py)
    scheduled_mode: Literal["full", "auto"] = "full"
    full_resolve_every_days: float = Field(default=7, gt=0)


class WarehouseSettings(_Strict):
    target: Literal["duckdb", "spark", "postgres"] = "duckdb"
    dbt_project_dir: Path = Path("dbt")


class ErasureSettings(_Strict):
    """`cdp forget` (see cdp/erasure/README.md)."""

    key_env: str = "CDP_ERASURE_KEY"  # environment variable holding the tombstone key
    key_file: Path = Path("{data_dir}/secrets/erasure.key")  # used when key_env is unset
    # channel -> columns kept when an erased person's rows are facts the business must keep
    # (revenue): those rows stay, anonymised; every other channel's rows are deleted.
    keep_anonymised: dict[str, list[str]] = Field(default_factory=dict)


class Settings(_Strict):
    project: str = "cdp"
    engine: Literal["duckdb", "spark"] = "duckdb"
    locale: str = "tr_TR"
    default_region: str = "TR"
    paths: Paths = Field(default_factory=Paths)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    erasure: ErasureSettings = Field(default_factory=ErasureSettings)
    # Validated by cdp.activation against its own models (destinations, batch sizes).
    activation: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, Channel]
    # Directory the config file lives in; relative paths are taken from here.
    root: Path = Path(".")

    @field_validator("channels")
    @classmethod
    def _name_channels(cls, channels: dict[str, Channel]) -> dict[str, Channel]:
        for name, channel in channels.items():
            channel.name = name
        return channels

    @cached_property
    def resolved_paths(self) -> Paths:
        return self.paths.resolved(self.root)

    @property
    def dbt_project_dir(self) -> Path:
        return _absolute(self.warehouse.dbt_project_dir, self.root)

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise ConfigError(
                f"unknown channel '{name}'; configured: {', '.join(self.channels)}"
            ) from None


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else (root / path).resolve()


def find_config_file(start: Path | None = None) -> Path:
    """`$CDP_CONFIG`, else the nearest `cdp.yaml` from `start` (default: cwd) upwards."""
    if env := os.environ.get(CONFIG_ENV):
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} points to {path}, which is not a file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / DEFAULT_CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {DEFAULT_CONFIG_NAME} found in {here} or its parents; set {CONFIG_ENV}"
    )


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the YAML file, apply environment overrides, validate."""
    config_path = Path(path).resolve() if path else find_config_file()
    if not config_path.is_file():
        raise ConfigError(f"config file {config_path} does not exist")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path} must hold a mapping at the top level")
    apply_env_overrides(data, os.environ if env is None else env)
    data.setdefault("root", str(config_path.parent))
    try:
        return Settings.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc


def _nested_keys(name: str) -> tuple[str, ...]:
    """The config keys a `CDP__A__B__C` variable sets: lower-cased, `__` between levels.

    Under `spark.conf` the rest of the name is one Spark key, and Spark keys are dotted and
    case-sensitive (`spark.sql.autoBroadcastJoinThreshold`): a dot may be written `__` (shells
    allow no dots in names), and the key keeps its case unless it is written all in capitals
    (`CDP__SPARK__CONF__SPARK__SQL__SHUFFLE__PARTITIONS`), which is read as lower case."""
    parts = name[len(NESTED_ENV_PREFIX):].split("__")
    if len(parts) >= 3 and [p.lower() for p in parts[:2]] == ["spark", "conf"]:
        key = ".".join(parts[2:])
        return ("spark", "conf", key.lower() if key.isupper() else key)
    return tuple(part.lower() for part in parts)


def apply_env_overrides(data: dict[str, Any], env: dict[str, str] | os._Environ[str]) -> None:
    """Shorthands (`CDP_ENGINE`) and nested keys (`CDP__IDENTITY__MATCH_THRESHOLD`,
    `CDP__SPARK__CONF__spark__sql__autoBroadcastJoinThreshold`: see `_nested_keys`), in place.

    Values are parsed as YAML scalars so `0.9` is a number and `true` a boolean.
    """
    overrides: list[tuple[tuple[str, ...], str]] = [
        (keys, env[name]) for name, keys in SHORTHAND_ENV.items() if name in env
    ]
    overrides += [(_nested_keys(name), value) for name, value in env.items()
                  if name.startswith(NESTED_ENV_PREFIX)]
    for keys, value in overrides:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot override {'.'.join(keys)}: {key} is not a mapping")
        node[keys[-1]] = yaml.safe_load(value)
