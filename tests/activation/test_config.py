"""The activation section's validation, and the retry helper's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml

from cdp.activation.config import (
    FileDestination,
    MetaDestination,
    RetrySettings,
    load_activation_config,
)
from cdp.activation.http import backoff_delay, retry_after_seconds
from cdp.config import ConfigError, Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "cdp" / "activation" / "example_config.yaml"


def test_default_is_one_file_destination(settings: Settings) -> None:
    config = load_activation_config(settings)
    assert list(config.destinations) == ["file"]
    file = config.destinations["file"]
    assert isinstance(file, FileDestination) and file.purpose == "none"
    assert file.retry == config.retry


def test_example_config_is_valid(settings: Settings) -> None:
    settings.activation = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["activation"]
    config = load_activation_config(settings)
    meta = config.destinations["meta_ads"]
    assert isinstance(meta, MetaDestination) and meta.name == "meta_ads"
    assert meta.mapped_segments() == ["lapsed_customers", "high_value_omnichannel"]
    assert {d.type for d in config.destinations.values()} == {
        "file", "meta", "google_ads", "tiktok", "webhook", "postgres"}


@pytest.mark.parametrize(("section", "message"), [
    ({"meta": {"type": "meta", "audiences": {"a": "1"}, "batch_size": 10_001}},
     "activation.destinations.meta.meta.batch_size"),
    ({"g": {"type": "google_ads", "customer_id": "123", "user_lists": {"a": "1"}}},
     "customer_id"),
    ({"m": {"type": "meta", "audiences": {"a": "1"}, "segments": ["b"]}},
     "no audience / user list mapped"),
    ({"w": {"type": "webhook", "url": "http://x", "url_env": "X", "purpose": "ads"}},
     "exactly one of url, url_env"),
    ({"w": {"type": "webhook", "url": "http://x"}}, "purpose"),
    ({"t": {"type": "tiktok", "upload": True}}, "upload: true needs"),
    ({"x": {"type": "carrier_pigeon"}}, "type"),
    ({"m": {"type": "meta", "audiences": {"a": "1"}, "token": "secret-in-config"}},
     "Extra inputs are not permitted"),
])
def test_invalid_sections_name_the_key(settings: Settings, section: dict, message: str) -> None:
    settings.activation = {"destinations": section}
    with pytest.raises(ConfigError, match=message):
        load_activation_config(settings)


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True),
                               now=now) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetrySettings(backoff_base=1.0, backoff_max=10.0)
    assert [backoff_delay(n, policy, lambda: 0.0) for n in range(5)] == [0.5, 1, 2, 4, 5]
    assert [backoff_delay(n, policy, lambda: 1.0) for n in range(5)] == [1, 2, 4, 8, 10]
