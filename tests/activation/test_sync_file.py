"""`cdp sync` with no activation config: one file destination, every segment, CSV per run
under {data_dir}/exports/; plus what every sync refuses to do and what it records."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import pytest

from cdp.activation import sync
from cdp.config import Settings
from cdp.errors import CdpError
from tests.activation.conftest import Warehouse, configure, person


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_default_file_export_three_runs(settings: Settings, warehouse: Warehouse) -> None:
    settings.activation = {}  # no `activation:` section: the default file destination applies
    people = [person(i) for i in range(1, 6)]
    warehouse.load(people, {"lapsed": ["C0001", "C0002", "C0003"], "vip": ["C0004"]})
    first = sync(settings)
    assert first.ok
    exports = settings.resolved_paths.data_dir / "exports" / "file"
    lapsed = sorted((exports / "lapsed").glob("*.csv"))
    assert len(lapsed) == 1 and len(list((exports / "vip").glob("*.csv"))) == 1
    rows = read(lapsed[0])
    assert [r["customer_id"] for r in rows] == ["C0001", "C0002", "C0003"]
    assert rows[0] == {
        "operation": "add", "reason": "new", "customer_id": "C0001",
        "email_sha256": hashlib.sha256("ayşe.1@example.com".encode()).hexdigest(),
        "phone_sha256": hashlib.sha256(b"+905320000001").hexdigest()}

    second = sync(settings)  # nothing changed: no new file
    assert second.figures["adds"] == 0 and len(list((exports / "lapsed").glob("*"))) == 1

    warehouse.load(people, {"lapsed": ["C0002", "C0003", "C0005"], "vip": ["C0004"]})
    third = sync(settings)
    assert (third.figures["adds"], third.figures["removes"]) == (1, 1)
    files = sorted((exports / "lapsed").glob("*.csv"), key=lambda p: p.stat().st_mtime)
    new = {r["operation"]: r for f in files[1:] for r in read(f)}
    assert new["add"]["customer_id"] == "C0005"
    assert (new["remove"]["customer_id"], new["remove"]["reason"]) == ("C0001", "left")
    summary_rows = dict(third.rows)
    assert "members 3" in summary_rows["lapsed → file"]
    assert summary_rows["members with a matchable identifier"] == "100.0%"


def test_parquet_export(settings: Settings, warehouse: Warehouse) -> None:
    configure(settings, {"files": {"type": "file", "format": "parquet",
                                   "fields": ["customer_id", "since"]}})
    warehouse.load([person(1)], {"vip": ["C0001"]})
    sync(settings)
    path = next((settings.resolved_paths.data_dir / "exports" / "files" / "vip").glob("*"))
    assert duckdb.sql(f"select * from '{path}'").fetchall() == [
        ("add", "new", "C0001", "2024-01-01")]


def test_sync_log_and_runs_carry_no_personal_data(settings: Settings,
                                                  warehouse: Warehouse) -> None:
    people = [person(1), person(2, ads_opt_in=False)]
    warehouse.load(people, {"vip": ["C0001", "C0002"]})
    result = sync(settings)
    logged = warehouse.query("select * from activation.sync_log")
    runs = warehouse.query("select * from activation.sync_runs")
    assert len(logged) == 1 and logged[0][6:10] == (2, 2, 0, "accepted")
    assert runs[0][2:6] == ("file", "vip", False, 2)
    text = repr(logged) + repr(runs) + repr(result.rows) + repr(result.notes)
    for p in people:
        for field in ("email", "phone", "first_name", "last_name", "postcode"):
            assert p[field].strip() not in text


def test_dry_run_writes_nothing(settings: Settings, warehouse: Warehouse) -> None:
    warehouse.load([person(1)], {"vip": ["C0001"]})
    result = sync(settings, dry_run=True)
    assert result.figures["adds"] == 1 and result.title.startswith("sync (dry run")
    assert not (settings.resolved_paths.data_dir / "exports").exists()
    assert warehouse.tables("activation") == set()


def test_refuses_an_empty_membership_table(settings: Settings, warehouse: Warehouse) -> None:
    warehouse.load([person(1)], {"vip": ["C0001"]})
    sync(settings)
    warehouse.load([person(1)], {})
    with pytest.raises(CdpError, match="segment_membership is empty"):
        sync(settings)


def test_clear_errors(settings: Settings, warehouse: Warehouse) -> None:
    with pytest.raises(CdpError, match="does not exist"):
        sync(settings)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("create table segment_membership (segment varchar)")
    with pytest.raises(CdpError, match="dim_customers not found"):
        sync(settings)
    warehouse.load([person(1)], {"vip": ["C0001"]})
    with pytest.raises(CdpError, match="unknown destination"):
        sync(settings, destinations=["nope"])
    with pytest.raises(CdpError, match="not synced"):
        sync(settings, segments=["nope"])
    only = sync(settings, segments=["vip"], destinations=["file"])
    assert [label for label, _ in only.rows][0] == "vip → file"


def test_payloads_stay_with_their_customer_across_chunks(
        settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp.activation import engine

    monkeypatch.setattr(engine, "CHUNK_ROWS", 2)  # members hashed two at a time
    configure(settings, {"file": {"type": "file", "batch_size": 3,
                                  "fields": ["customer_id", "email_sha256"]}})
    people = [person(i) for i in range(1, 8)]
    warehouse.load(people, {"vip": [p["customer_id"] for p in reversed(people)]})
    assert sync(settings).figures["adds"] == 7
    files = (settings.resolved_paths.data_dir / "exports" / "file" / "vip").glob("*.csv")
    rows = [r for f in files for r in read(f)]
    assert len(rows) == 7
    for row in rows:
        raw = people[int(row["customer_id"][1:]) - 1]["email"]
        email = raw.strip().replace("İ", "i").lower()
        assert row["email_sha256"] == hashlib.sha256(email.encode()).hexdigest()


def test_a_segment_dropped_from_the_warehouse_is_emptied(settings: Settings,
                                                         warehouse: Warehouse) -> None:
    people = [person(1), person(2)]
    warehouse.load(people, {"old": ["C0001"], "vip": ["C0002"]})
    sync(settings)
    warehouse.load(people, {"vip": ["C0002"]})
    result = sync(settings)
    assert dict(result.rows)["old → file"].startswith("members 0 · adds 0 · removes 1")
