"""The expectation suites: JSON files in `expectations/`, one per suite, loaded as GX suites.

Each file is a Great Expectations 1.x suite (`name`, `expectations`, `meta`) whose `meta.cdp`
tells the runner how to use it: `stage` (raw | identity | marts), `frame` (which table the
runner builds for it), `parameters` (thresholds the runner needs to compute `$PARAMETER`
values), `index_columns` (the columns that identify a failing row in messages) and, for marts,
`confirmable`. The raw suite is a template: `{primary_key}`, `{event_time}`, `{email}`,
`{phone}` in a `column` are replaced per channel from cdp.yaml.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.config import Channel, Settings
from cdp.errors import CdpError

STAGES = ("raw", "identity", "marts")
# Lineage columns every raw batch carries (see cdp/lake.py).
LINEAGE_COLUMNS = ("_batch_id", "_source_file", "_row_number", "_ingested_at")
# Canonical identity fields whose native column holds personal data (masked in any output).
PII_FIELDS = frozenset({
    "first_name", "last_name", "full_name", "email", "phone", "birth_date", "address",
    "postcode", "loyalty_id", "login_id", "device_id",
})
_PACKAGE_EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


@dataclass
class Suite:
    """One suite ready to run: the GX suite definition plus the runner's instructions."""

    name: str
    stage: str
    definition: dict[str, Any]  # GX ExpectationSuite JSON, placeholders resolved
    frame: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    index_columns: list[str] = field(default_factory=list)
    confirmable: bool = False
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        """sha256 of the resolved definition: which thresholds a verdict was made under."""
        text = json.dumps(self.definition, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def expectations_dir(settings: Settings) -> Path:
    """`expectations/` beside cdp.yaml when present, else the one shipped with the project."""
    beside_config = Path(settings.root) / "expectations"
    return beside_config if beside_config.is_dir() else _PACKAGE_EXPECTATIONS


def load_suites(settings: Settings, stage: str, folder: Path | None = None) -> list[Suite]:
    """Every suite of a stage, sorted by name. The raw stage has one template (see module doc)."""
    if stage not in STAGES:
        raise CdpError(f"unknown gate stage '{stage}'; use one of {', '.join(STAGES)}")
    folder = folder or expectations_dir(settings)
    suites = []
    for path in sorted(folder.glob("*.json")):
        definition = _read(path)
        meta = (definition.get("meta") or {}).get("cdp") or {}
        if meta.get("stage") != stage:
            continue
        suites.append(Suite(
            name=definition["name"], stage=stage, definition=definition,
            frame=meta.get("frame", ""), parameters=dict(meta.get("parameters") or {}),
            index_columns=list(meta.get("index_columns") or []),
            confirmable=bool(meta.get("confirmable")), path=path,
        ))
    if not suites:
        raise CdpError(f"no expectation suite for stage '{stage}' in {folder}")
    return sorted(suites, key=lambda s: s.name)


def _read(path: Path) -> dict[str, Any]:
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CdpError(f"expectation suite {path} is unreadable: {exc}") from None
    if not isinstance(definition, dict) or "name" not in definition \
            or not isinstance(definition.get("expectations"), list):
        raise CdpError(f"expectation suite {path} needs a 'name' and a list of 'expectations'")
    return definition


def channel_roles(channel: Channel) -> dict[str, str]:
    """Placeholder -> native column for one channel."""
    roles = {"primary_key": channel.primary_key}
    if channel.event_time:
        roles["event_time"] = channel.event_time
    for role in ("email", "phone"):
        if role in channel.identity:
            roles[role] = channel.identity[role]
    return roles


def pii_columns(channel: Channel) -> set[str]:
    """Native columns of a channel that hold personal data."""
    return {column for fieldname, column in channel.identity.items() if fieldname in PII_FIELDS}


def required_columns(channel: Channel) -> list[str]:
    """Columns a raw batch must have: required and key columns, the event time, the columns
    identity resolution reads, and lineage. (Optional columns may be absent from old batches.)"""
    names = [name for name, column in channel.columns.items() if column.required]
    names += [channel.primary_key, *([channel.event_time] if channel.event_time else [])]
    names += list(channel.identity.values()) + list(LINEAGE_COLUMNS)
    return sorted(set(names))


def for_channel(template: Suite, channel: Channel) -> Suite:
    """The raw template instantiated for one channel: `raw.<channel>`.

    Expectations whose placeholder the channel lacks (a POS without email) are left out;
    expectations on personal-data columns are marked `meta.pii` so their samples are masked;
    parameters are the template's, overridden by `meta.cdp.channels.<channel>`.
    """
    roles = channel_roles(channel)
    pii = pii_columns(channel)
    definition = copy.deepcopy(template.definition)
    kept = []
    for expectation in definition["expectations"]:
        kwargs = expectation.get("kwargs", {})
        column = kwargs.get("column")
        if isinstance(column, str) and column.startswith("{") and column.endswith("}"):
            role = column[1:-1]
            if role not in roles:
                continue
            kwargs["column"] = roles[role]
        if kwargs.get("column") in pii:
            expectation["meta"] = {**(expectation.get("meta") or {}), "pii": True}
        kept.append(expectation)
    definition["expectations"] = kept
    definition["name"] = f"{template.name}.{channel.name}"
    cdp_meta = definition.setdefault("meta", {}).setdefault("cdp", {})
    overrides = (cdp_meta.pop("channels", None) or {}).get(channel.name) or {}
    parameters = {**template.parameters, **overrides}
    cdp_meta["parameters"] = parameters
    cdp_meta["channel"] = channel.name
    return Suite(name=definition["name"], stage=template.stage, definition=definition,
                 frame="raw_batch", parameters=parameters, index_columns=["_row_number"],
                 path=template.path)
