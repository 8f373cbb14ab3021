"""Webhook destination, against a local HTTP receiver on 127.0.0.1 (standing in for a remote
endpoint) that verifies the HMAC signature and applies each Idempotency-Key once."""

from __future__ import annotations

import hashlib

import pytest

from cdp.activation import sync
from cdp.activation.state import Store
from cdp.config import Settings
from tests.activation.conftest import Warehouse, configure, person, state_rows
from tests.activation.fakes import WebhookReceiver


@pytest.fixture
def hook(settings: Settings, serve, monkeypatch: pytest.MonkeyPatch, waits: list[float]):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    app = WebhookReceiver(secret="s3cret", authorization="Bearer hook-token")
    server = serve(app)
    monkeypatch.setenv("HOOK_URL", f"{server.url}/hooks/cdp")
    monkeypatch.setenv("HOOK_AUTH", "Bearer hook-token")
    configure(settings, {"crm": {
        "type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET",
        "header_envs": {"Authorization": "HOOK_AUTH"},
        "purpose": "email", "batch_size": 2, "fields": ["customer_id", "email_sha256", "since"]}})
    return app, server


def test_signed_batches_diff_and_reasons(settings: Settings, warehouse: Warehouse, hook) -> None:
    app, server = hook
    people = [person(i) for i in range(1, 5)] + [person(5, email_opt_in=False)]
    warehouse.load(people, {"vip": ["C0001", "C0002", "C0003", "C0005"]})
    assert sync(settings).ok
    assert set(app.members["vip"]) == {"C0001", "C0002", "C0003"}
    assert app.members["vip"]["C0001"] == {
        "customer_id": "C0001", "email_sha256": hashlib.sha256(
            "ayşe.1@example.com".encode()).hexdigest(), "since": "2024-01-01"}
    warehouse.load(people, {"vip": ["C0002", "C0003", "C0004"]}, erased=["C0003"])
    result = sync(settings)
    assert set(app.members["vip"]) == {"C0002", "C0004"}
    removes = [b for b in (r.json() for r in server.requests) if b["operation"] == "remove"]
    assert {m["customer_id"]: m["reason"] for b in removes for m in b["members"]} == {
        "C0001": "left", "C0003": "erased"}
    assert result.figures["pairs"][0]["removes_by_reason"] == {"left": 1, "erased": 1}
    assert all(len(b["members"]) <= 2 for b in (r.json() for r in server.requests))
    assert server.problems == [] and app.duplicates == 0


def test_in_doubt_batch_is_resent_with_the_same_key_and_applied_once(
        settings: Settings, warehouse: Warehouse, hook,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, server = hook
    warehouse.load([person(i) for i in range(1, 4)], {"vip": ["C0001", "C0002", "C0003"]})
    original = Store.settle
    calls = {"n": 0}

    def crash_after_delivery(self: Store, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed after the receiver answered 200")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "settle", crash_after_delivery)
    with pytest.raises(RuntimeError):
        sync(settings)
    assert len(app.processed) == 1
    result = sync(settings)
    assert result.ok
    keys = [r.headers["idempotency-key"] for r in server.requests]
    assert keys[0] == keys[1]  # the in-doubt batch resent with its key...
    assert app.duplicates == 1  # ...which the receiver recognised
    assert max(app.applied.values()) == 1  # every member applied exactly once
    assert set(app.members["vip"]) == {"C0001", "C0002", "C0003"}
    assert set(state_rows(warehouse, "crm", "vip").values()) == {"delivered"}


def test_rejected_batch_is_logged_and_proposed_again(settings: Settings,
                                                     warehouse: Warehouse, hook) -> None:
    app, server = hook
    warehouse.load([person(1)], {"vip": ["C0001"]})
    server.force(422, {"Content-Type": "application/json"}, b'{"detail": "C0001 invalid"}')
    result = sync(settings)
    assert result.figures["rejected"] == 1 and result.figures["failed_batches"] == 0
    assert not result.ok  # a batch refused as a whole needs attention
    log = warehouse.query("select status, rows_rejected, error from activation.sync_log")
    assert log == [("rejected", 1, "HTTP 422")]  # the body (which names data) is not logged
    assert state_rows(warehouse, "crm", "vip") == {}
    assert sync(settings).figures["accepted"] == 1
    assert set(app.members["vip"]) == {"C0001"}
