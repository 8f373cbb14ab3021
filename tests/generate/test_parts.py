"""The generator's building blocks: text rules, phone and date formats, ids, the sorted spool,
file naming and the contract with cdp.yaml."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import phonenumbers
import pytest

from cdp.config import Settings, load_settings
from cdp.errors import CdpError
from cdp.generate import generate
from cdp.generate.ids import OpaqueIds
from cdp.generate.noise import (
    DATE_STYLES,
    PHONE_STYLES,
    Noise,
    fold,
    format_date,
    format_phone,
    lower,
    upper,
)
from cdp.generate.run import landing_file
from cdp.generate.writers import Spool
from tests.conftest import write_config


def test_turkish_case_and_folding() -> None:
    assert upper("ılık iğne", turkish=True) == "ILIK İĞNE"
    assert lower("IŞIK İNCE", turkish=True) == "ışık ince"
    assert upper("William", turkish=False) == "WILLIAM"
    assert fold("Şükrü Çağlar Işıl İnce Öğüt") == "Sukru Caglar Isil Ince Ogut"
    assert fold("Zoë Łukasz") == "Zoe Lukasz"


@pytest.mark.parametrize("e164,region", [("+905321234567", "TR"), ("+447400123456", "GB")])
def test_every_phone_style_reads_back_as_the_same_number(e164: str, region: str) -> None:
    written = {format_phone(e164, style, region) for style in PHONE_STYLES}
    assert len(written) >= 6  # genuinely different spellings
    for text in written:
        candidate = text if text.startswith("+") else (
            "+" + text if text.startswith(e164[1:3]) and len(text) > 10 else text)
        parsed = phonenumbers.parse(candidate, region)
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == e164


def test_turkish_phone_styles_are_the_usual_ones() -> None:
    styles = {s: format_phone("+905321234567", s, "TR") for s in PHONE_STYLES}
    assert styles["national"] == "05321234567"
    assert styles["national_spaced"] == "0532 123 45 67"
    assert styles["international"] == "+90 532 123 4567"
    assert styles["digits"] == "5321234567"
    assert styles["cc_paren"] == "90(532)1234567"


def test_date_styles() -> None:
    day = dt.date(1987, 3, 9)
    assert [format_date(day, s) for s in DATE_STYLES] == [
        "1987-03-09", "09/03/1987", "09.03.1987", "9.3.1987", "1987/03/09"]


def test_noise_level_zero_never_fires_and_scales_with_level() -> None:
    clean = Noise(random.Random(1), 0.0, "TR", True)
    assert not any(clean.chance(0.9) for _ in range(1000))
    assert {clean.email("ayse.kaya@gmail.com", 1.0) for _ in range(50)} == {"ayse.kaya@gmail.com"}
    realistic = Noise(random.Random(2), 1.0, "TR", True)
    dirty = Noise(random.Random(2), 2.0, "TR", True)
    low = sum(realistic.chance(0.1) for _ in range(5000))
    high = sum(dirty.chance(0.1) for _ in range(5000))
    assert 350 < low < 650 and 850 < high < 1150


def test_email_variants_stay_the_same_mailbox_mostly() -> None:
    noise = Noise(random.Random(3), 1.0, "TR", True)
    variants = {noise.email("ayse.kaya87@gmail.com", 0.9) for _ in range(300)}
    assert {"AYSE.KAYA87@GMAIL.COM", "aysekaya87@gmail.com"} <= variants
    assert any(v.startswith(" ") or v.endswith(("\t", " ")) for v in variants)
    assert any("+" in v for v in variants)


def test_opaque_ids_are_unique_and_do_not_count_up() -> None:
    ids = OpaqueIds("W", 6, 17)
    values = [ids.next() for _ in range(200_000)]
    assert len(set(values)) == len(values)
    numbers = [int(v[1:]) for v in values[:100]]
    assert numbers != sorted(numbers)
    small = OpaqueIds("X", 1, 1)
    for _ in range(10):
        small.next()
    with pytest.raises(OverflowError):
        small.next()


def test_spool_sorts_by_event_time_across_spilled_runs(settings: Settings, tmp_path: Path) -> None:
    channel = settings.channels["sms_contacts"]
    rng = random.Random(4)
    spool = Spool(channel, budget=7, workdir=tmp_path)
    expected = []
    for i in range(100):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(30))
        spool.add({"contact_id": f"C{i:03d}", "msisdn": "905321234567", "opt_in_date": day},
                  f"P{i}")
        expected.append((day, f"C{i:03d}"))
    assert len(spool.runs) > 10
    assert [(e[0], e[1]) for e in spool.sorted()] == [(d.isoformat(), c) for d, c in
                                                       sorted(expected)]


def test_spool_refuses_an_undeclared_column(settings: Settings, tmp_path: Path) -> None:
    spool = Spool(settings.channels["sms_contacts"], budget=10, workdir=tmp_path)
    with pytest.raises(CdpError, match="does not declare"):
        spool.add({"contact_id": "C1", "msisdn": "1", "favourite_colour": "red"}, "P1")


def test_landing_file_follows_the_channel_glob(settings: Settings) -> None:
    landing = settings.resolved_paths.landing
    web = settings.channels["web_orders"]
    assert landing_file(landing, web, dt.date(2026, 11, 1)) == (
        landing / "web_orders" / "web_orders_20261101.csv")


def test_unknown_channels_are_skipped_and_stale_files_replaced(tmp_path: Path) -> None:
    import yaml

    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["channels"]["social_leads"] = {
        "path": "social_leads/*.csv", "format": "csv", "primary_key": "lead_id",
        "columns": {"lead_id": {"type": "string"}}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    settings = load_settings(path, env={})
    generate(settings, people=30, seed=1, as_of=dt.date(2026, 10, 1))
    summary = generate(settings, people=30, seed=1)
    assert any("social_leads" in note for note in summary.notes)
    assert summary.figures["files_written"] == 8
    landing = settings.resolved_paths.landing
    assert sorted(p.name for p in (landing / "web_orders").iterdir()) == [
        "web_orders_20261101.csv"]  # the 20261001 file of the earlier run is gone
    assert not (landing / "social_leads").exists()


def test_a_generated_column_missing_from_config_is_a_clear_error(tmp_path: Path) -> None:
    import yaml

    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["channels"]["carts"]["columns"]["category"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CdpError, match="carts.*category"):
        generate(load_settings(path, env={}), people=40, seed=1)
