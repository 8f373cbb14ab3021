"""TikTok customer files: CSV with Email_SHA256, Phone_SHA256 headers in a folder, and the
upload + audience update against a local HTTP server on 127.0.0.1 that stands in for the
TikTok Marketing API (unreachable from tests) and checks its contract."""

from __future__ import annotations

import csv
import hashlib

import pytest

from cdp.activation import sync
from cdp.config import Settings
from tests.activation.conftest import Warehouse, configure, person
from tests.activation.fakes import TikTokAudiences


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_customer_file_written_per_batch(settings: Settings, warehouse: Warehouse) -> None:
    folder = settings.resolved_paths.data_dir / "tiktok-files"
    configure(settings, {"tiktok": {"type": "tiktok", "folder": str(folder)}})
    warehouse.load([person(1, email="Shop+Promo@Example.com"), person(2, phone=None),
                    person(3, ads_opt_in=False)], {"lapsed": ["C0001", "C0002", "C0003"]})
    assert sync(settings).ok
    files = sorted((folder / "lapsed").glob("*-add-*.csv"))
    assert len(files) == 1
    with files[0].open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Email_SHA256", "Phone_SHA256"]
    assert sorted(rows[1:]) == sorted([
        [sha("shop@example.com"), sha("905320000001")],  # +tag removed, digits only
        [sha("ilkay.2@example.com"), ""],
    ])
    warehouse.load([person(1), person(2, phone=None)], {"lapsed": ["C0002"]})
    assert sync(settings).figures["removes"] == 1
    removal = next((folder / "lapsed").glob("*-remove-*.csv")).read_text(encoding="utf-8")
    assert sha("shop@example.com") in removal  # the keys that were sent, not today's


def test_upload_and_audience_update(settings: Settings, warehouse: Warehouse, serve,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", "tt-token")
    app = TikTokAudiences(token="tt-token", advertiser_id="7001")
    server = serve(app)
    configure(settings, {"tiktok": {
        "type": "tiktok", "folder": None, "upload": True, "advertiser_id": "7001",
        "base_url": f"{server.url}/open_api/v1.3", "audiences": {"lapsed": "42"}}})
    warehouse.load([person(1), person(2)], {"lapsed": ["C0001", "C0002"]})
    assert sync(settings).ok
    assert app.audiences["42"] == {(sha("ayşe.1@example.com"), sha("905320000001")),
                                   (sha("ilkay.2@example.com"), sha("905320000002"))}
    warehouse.load([person(1), person(2)], {"lapsed": ["C0002"]})
    assert sync(settings).ok
    assert app.audiences["42"] == {(sha("ilkay.2@example.com"), sha("905320000002"))}
    assert server.problems == []
