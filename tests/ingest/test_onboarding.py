"""The worked example of cdp/ingest/ONBOARDING.md, run exactly as written: a channel with odd
column names is onboarded by config alone (the YAML and the CSV are taken from the document)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import yaml
from click.testing import CliRunner

from cdp.cli import cli
from cdp.config import load_settings
from tests.conftest import REPO_ROOT, write_config
from tests.ingest.helpers import assert_reconciled, quarantine_rows, raw_rows

DOC = REPO_ROOT / "cdp" / "ingest" / "ONBOARDING.md"


def _block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"no {language} block in {DOC.name}"
    return match.group(1)


def test_the_documented_channel_loads_with_config_alone(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["channels"].update(yaml.safe_load(_block("yaml")))
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    settings = load_settings(config_path, env={})
    landing = settings.resolved_paths.landing / "franchise_kiosk"
    landing.mkdir(parents=True)
    (landing / "2024-03-01.csv").write_text(_block("csv"), encoding="utf-8")

    result = CliRunner().invoke(
        cli, ["--config", str(config_path), "ingest", "--channel", "franchise_kiosk"], obj={})
    assert result.exit_code == 0, result.output
    assert "franchise_kiosk" in result.output

    rows = raw_rows(settings, "franchise_kiosk",
                    '"#Fiş", "İşlem Tarihi", "Müşteri Adı", "E-Posta", "Tutar (TL)", "Sadakat?"')
    assert rows == [
        ("K-1001", datetime(2024, 3, 1, 9, 15), "Gülşen Çelik", "gulsen@example.com",
         Decimal("1249.90"), True),
        ("K-1002", datetime(2024, 3, 1, 10, 2), "İsmail Işık", "ismail@example.com",
         Decimal("89.50"), False),
        ("K-1004", datetime(2024, 3, 1, 11, 5), "Ali Uğur", "ali@example.com",
         Decimal("12.50"), True),
    ]
    (row,) = quarantine_rows(settings, "franchise_kiosk", "_row_number, _reason, _column, _raw")
    assert row == (3, "wrong type", "Sadakat?",
                   "K-1003;01/03/2024 10:40;Öykü Şen;;05554443322;15,00;evet")
    assert settings.channel("franchise_kiosk").identity["full_name"] == "Müşteri Adı"
    assert_reconciled(settings)
