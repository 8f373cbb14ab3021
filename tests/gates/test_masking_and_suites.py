"""Masking of sample values, and the suites in expectations/ as Great Expectations loads them."""

from __future__ import annotations

import json

import pytest

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.gates.masking import mask_result, mask_validation_dict, mask_value
from cdp.gates.report import scrub
from cdp.gates.suites import (
    STAGES,
    expectations_dir,
    for_channel,
    load_suites,
    required_columns,
)


@pytest.mark.parametrize(("value", "pii", "masked"), [
    ("ayse.yilmaz@gmail.com", False, "a***@gmail.com"),
    ("  AYSE@Gmail.com ", True, "A***@Gmail.com"),
    ("+905321234567", False, "+90532*****67"),
    ("0532 123 45 67", True, "05321****67"),
    ("Ayşe", True, "A***"),
    ("Ayşe", False, "Ayşe"),          # not PII by column and not email/phone-like
    ("", True, ""),                   # an empty value is the finding itself
    ("C00CCA0BE40130972", False, "C00CCA0BE40130972"),  # ids with letters are kept
    ("2026-10-31 12:00:00", False, "2026-10-31 12:00:00"),
    ("2026-10-31", False, "2026-10-31"),
    (17, False, 17),
    (17, True, "***"),
    (None, True, None),
])
def test_mask_value(value: object, pii: bool, masked: object) -> None:
    assert mask_value(value, pii) == masked


def test_mask_result_masks_samples_counts_and_the_column_in_index_rows() -> None:
    result = {
        "partial_unexpected_list": ["mehmet.kaya.gmail.com", "Ali"],
        "partial_unexpected_counts": [{"value": "Ali", "count": 2}],
        "partial_unexpected_index_list": [{"email": "Ali", "_row_number": 7}],
        "unexpected_count": 2,
    }
    masked = mask_result(result, "email", pii=True)
    assert masked["partial_unexpected_list"] == ["m***", "A***"]
    assert masked["partial_unexpected_counts"] == [{"value": "A***", "count": 2}]
    assert masked["partial_unexpected_index_list"] == [{"email": "A***", "_row_number": 7}]
    assert result["partial_unexpected_list"][0] == "mehmet.kaya.gmail.com"  # input untouched
    whole = mask_validation_dict({"results": [{
        "expectation_config": {"kwargs": {"column": "email"}, "meta": {"pii": True}},
        "result": result}]})
    assert "mehmet" not in json.dumps(whole)


def test_scrub_free_text() -> None:
    text = scrub("Could not convert 'ali@example.com' or '+90 532 123 45 67'\nsecond line")
    assert "ali@" not in text and "123 45" not in text and "second" not in text


def test_every_suite_file_is_a_great_expectations_suite(settings: Settings) -> None:
    import great_expectations as gx

    folder = expectations_dir(settings)
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 6 and (folder / "README.md").is_file()
    suites = [s for stage in STAGES for s in load_suites(settings, stage)]
    assert {s.path for s in suites} == set(files)  # no file belongs to no stage
    for suite in suites:
        instances = [for_channel(suite, c) for c in settings.channels.values()] \
            if suite.stage == "raw" else [suite]
        for instance in instances:
            gx_suite = gx.ExpectationSuite(**instance.definition)
            assert len(gx_suite.expectations) == len(instance.definition["expectations"])
            severities = {e.severity.value for e in gx_suite.expectations}
            assert severities <= {"critical", "warning"}


def test_raw_template_per_channel(settings: Settings) -> None:
    (template,) = load_suites(settings, "raw")
    pos = for_channel(template, settings.channel("pos_transactions"))
    web = for_channel(template, settings.channel("web_orders"))
    assert pos.name == "raw.pos_transactions"
    columns = lambda s: [e["kwargs"].get("column") for e in s.definition["expectations"]]  # noqa: E731
    assert "customer_email" in columns(web) and "phone" in columns(web)
    assert "CUST_PHONE" in columns(pos)
    assert not any(c and c.startswith("{") for c in columns(pos))  # POS has no email: dropped
    assert all(e.get("meta", {}).get("pii") for e in web.definition["expectations"]
               if e["kwargs"].get("column") in ("customer_email", "phone"))
    assert "order_id" in required_columns(settings.channel("web_orders"))
    assert "_row_number" in required_columns(settings.channel("web_orders"))
    assert pos.fingerprint != web.fingerprint


def test_unknown_stage_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(CdpError, match="unknown gate stage"):
        load_suites(settings, "gold")
