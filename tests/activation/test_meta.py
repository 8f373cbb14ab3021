"""Meta Custom Audiences, against a local HTTP server on 127.0.0.1 that stands in for the
Graph API (which tests cannot reach) and checks its request contract: path, method, token
header, multipart `payload` field, {"schema", "data"} shape, <= the batch size, SHA-256 hex
values, unhashed EXTERN_ID. Also the sync semantics every destination shares: diffs, consent,
erasure, retries, failing batches and crash recovery."""

from __future__ import annotations

import hashlib

import pytest

from cdp.activation import sync
from cdp.activation.destinations.base import Batch, BatchResult
from cdp.activation.destinations.meta import MetaAdapter
from cdp.activation.state import Store
from cdp.config import Settings
from cdp.errors import CdpError
from tests.activation.conftest import Warehouse, configure, person, state_rows
from tests.activation.fakes import MetaAudiences

SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "GEN", "DOBY", "DOBM", "DOBD", "CT", "ZIP", "COUNTRY",
          "EXTERN_ID"]
AUDIENCE = "120210000000000001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def meta(settings: Settings, serve, monkeypatch: pytest.MonkeyPatch, waits: list[float]):
    """A Meta stand-in and settings pointing at it, batches of 3 rows."""
    monkeypatch.setenv("META_ACCESS_TOKEN", "meta-token")
    app = MetaAudiences(token="meta-token", schema=SCHEMA, max_rows=3)
    server = serve(app)
    configure(settings, {"meta": {"type": "meta", "base_url": f"{server.url}/v21.0",
                                  "audiences": {"lapsed": AUDIENCE}, "batch_size": 3}})
    return app, server


def members_of(app: MetaAudiences) -> set[str]:
    return set(app.audiences.get(AUDIENCE, {}))


def test_three_runs_add_keep_remove(settings: Settings, warehouse: Warehouse, meta) -> None:
    app, server = meta
    people = [person(i) for i in range(1, 9)]
    warehouse.load(people, {"lapsed": ["C0001", "C0002", "C0003", "C0004", "C0005", "C0006",
                                       "C0007"], "other": ["C0008"]})
    first = sync(settings)
    assert first.ok and first.figures["adds"] == 7 and first.figures["removes"] == 0
    assert members_of(app) == {f"C000{i}" for i in range(1, 8)}
    assert app.batch_sizes == [3, 3, 1]  # never more than the batch size
    assert all(method == "POST" for method, _ in app.bodies)
    # The documented normalisation, hashed: " Ayşe.1@Example.com " -> "ayşe.1@example.com".
    added = app.audiences[AUDIENCE]["C0001"]
    row = dict(zip(SCHEMA, added, strict=True))
    assert people[0]["email"] == " Ayşe.1@Example.com "
    assert row["EMAIL"] == sha("ayşe.1@example.com")
    assert row["PHONE"] == sha("905320000001")
    assert row["FN"] == sha("ayşe") and row["COUNTRY"] == sha("tr")
    assert row["EXTERN_ID"] == "C0001"

    requests = len(server.requests)
    second = sync(settings)  # nothing changed: nothing sent
    assert second.figures["adds"] == 0 and second.figures["removes"] == 0
    assert len(server.requests) == requests

    warehouse.load(people, {"lapsed": ["C0002", "C0004", "C0006", "C0007", "C0008"]})
    third = sync(settings)
    assert third.figures["adds"] == 1 and third.figures["removes"] == 3
    assert members_of(app) == {"C0002", "C0004", "C0006", "C0007", "C0008"}
    deletes = [body for method, body in app.bodies if method == "DELETE"]
    removed = {row[-1]: row for body in deletes for row in body["data"]}
    assert set(removed) == {"C0001", "C0003", "C0005"}
    assert removed["C0001"] == added  # removal sends exactly the keys that were added
    assert max(app.added.values()) == 1  # nobody was added twice
    assert server.problems == []
    assert set(state_rows(warehouse, "meta", "lapsed")) == members_of(app)


def test_consent_and_erasure_remove_previously_sent(settings: Settings, warehouse: Warehouse,
                                                    meta) -> None:
    app, server = meta
    people = [person(1), person(2), person(3), person(4, ads_opt_in=None),
              person(5, ads_opt_in=False)]
    ids = ["C0001", "C0002", "C0003", "C0004", "C0005"]
    warehouse.load(people, {"lapsed": ids})
    first = sync(settings)
    assert members_of(app) == {"C0001", "C0002", "C0003"}  # null or false: never sent
    pair = first.figures["pairs"][0]
    assert pair["skipped_no_consent"] == 2 and pair["members"] == 5

    # C0001 withdraws ads consent; C0002 is erased and gone from the profiles; C0003 is
    # erased but the segment was not rebuilt yet.
    people = [person(1, ads_opt_in=False), person(3), person(4), person(5)]
    warehouse.load(people, {"lapsed": ["C0001", "C0003", "C0004", "C0005"]},
                   erased=["C0002", "C0003"])
    second = sync(settings)
    assert members_of(app) == {"C0004", "C0005"}
    assert second.figures["pairs"][0]["removes_by_reason"] == {
        "no_consent": 1, "erased": 2}
    # The erased customers' keys were removed with what had been sent, then forgotten.
    assert set(state_rows(warehouse, "meta", "lapsed")) == {"C0004", "C0005"}
    assert server.problems == []


def test_changed_identifier_removes_old_keys_and_adds_new(settings: Settings,
                                                          warehouse: Warehouse, meta) -> None:
    app, _ = meta
    warehouse.load([person(1)], {"lapsed": ["C0001"]})
    sync(settings)
    old = app.audiences[AUDIENCE]["C0001"]
    warehouse.load([person(1, email="new@example.com")], {"lapsed": ["C0001"]})
    result = sync(settings)
    assert result.figures["removes"] == 1 and result.figures["adds"] == 1
    deleted = [body["data"][0] for method, body in app.bodies if method == "DELETE"]
    assert deleted == [old]
    assert app.audiences[AUDIENCE]["C0001"][0] == sha("new@example.com")


def test_429_retry_after_and_500_are_retried(settings: Settings, warehouse: Warehouse, meta,
                                             waits: list[float]) -> None:
    app, server = meta
    warehouse.load([person(1), person(2)], {"lapsed": ["C0001", "C0002"]})
    server.force(429, {"Retry-After": "7"})
    server.force(500)
    result = sync(settings)
    assert result.ok and members_of(app) == {"C0001", "C0002"}
    assert waits[0] == 7.0  # Retry-After honoured
    assert 0.5 <= waits[1] <= 1.0  # then exponential backoff: base * 2**1, upper half jittered
    log = warehouse.query("select status, rows_accepted from activation.sync_log")
    assert log == [("accepted", 2)]


def test_meta_throttling_code_is_retried(settings: Settings, warehouse: Warehouse, meta,
                                         waits: list[float]) -> None:
    app, server = meta
    warehouse.load([person(1)], {"lapsed": ["C0001"]})
    server.force(400, {"Content-Type": "application/json"},
                 b'{"error": {"type": "OAuthException", "code": 17, "message": "limit"}}')
    assert sync(settings).ok and members_of(app) == {"C0001"}
    assert len(waits) == 1


def test_failing_batch_is_logged_kept_and_resent_next_run(settings: Settings,
                                                          warehouse: Warehouse, meta,
                                                          waits: list[float]) -> None:
    app, server = meta
    ids = [f"C000{i}" for i in range(1, 8)]
    warehouse.load([person(i) for i in range(1, 8)], {"lapsed": ids})
    server.force(500, times=3)  # every attempt at the first batch fails
    result = sync(settings)
    assert not result.ok
    assert members_of(app) == set(ids[3:])  # the other batches still went
    log = warehouse.query("select batch_id, status, rows_attempted, rows_accepted, error "
                          "from activation.sync_log order by logged_at")
    failed = [row for row in log if row[1] == "failed"]
    assert len(failed) == 1 and failed[0][2:4] == (3, 0)
    assert failed[0][4] == "HTTP 500 after 3 attempts"  # status only, no data
    assert sorted(state_rows(warehouse, "meta", "lapsed").values()) == (
        ["delivered"] * 4 + ["in_flight"] * 3)

    again = sync(settings)
    assert again.ok and members_of(app) == set(ids)
    assert again.figures["pairs"][0]["replayed_rows"] == 3
    resent = warehouse.query("select batch_id, replayed from activation.sync_log "
                             "where status = 'accepted' and replayed")
    assert [r[0] for r in resent] == [failed[0][0]]  # the same batch, same id
    assert max(app.added.values()) == 1


def test_crash_after_first_batch_resumes_without_sending_twice(
        settings: Settings, warehouse: Warehouse, meta,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, server = meta
    ids = [f"C000{i}" for i in range(1, 8)]
    warehouse.load([person(i) for i in range(1, 8)], {"lapsed": ids})
    original = MetaAdapter.send
    calls = {"n": 0}

    def crash_on_second_batch(self: MetaAdapter, batch: Batch) -> BatchResult:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(MetaAdapter, "send", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        sync(settings)
    assert members_of(app) == set(ids[:3])
    monkeypatch.setattr(MetaAdapter, "send", original)
    result = sync(settings)
    assert result.ok and members_of(app) == set(ids)
    assert max(app.added.values()) == 1  # nothing sent twice
    assert set(state_rows(warehouse, "meta", "lapsed").values()) == {"delivered"}
    assert server.problems == []


def test_crash_after_request_before_settle_resends_the_same_batch(
        settings: Settings, warehouse: Warehouse, meta,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = meta
    warehouse.load([person(i) for i in range(1, 5)],
                   {"lapsed": ["C0001", "C0002", "C0003", "C0004"]})
    original = Store.settle
    calls = {"n": 0}

    def crash_settling_first(self: Store, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated crash after the request")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "settle", crash_settling_first)
    with pytest.raises(RuntimeError):
        sync(settings)
    first_batch = app.bodies[0][1]["data"]
    # In doubt: the rows stay in flight, never marked delivered without an acknowledgement.
    assert sorted(state_rows(warehouse, "meta", "lapsed").values()) == ["in_flight"] * 3
    # Meanwhile C0001 withdraws consent: it is not resent, and is removed as possibly added.
    warehouse.load([person(1, ads_opt_in=False)] + [person(i) for i in range(2, 5)],
                   {"lapsed": ["C0001", "C0002", "C0003", "C0004"]})
    result = sync(settings)
    assert result.ok
    assert members_of(app) == {"C0002", "C0003", "C0004"}
    resent = [body["data"] for method, body in app.bodies[1:] if method == "POST"]
    assert [r[-1] for r in resent[0]] == ["C0002", "C0003"]  # the in-doubt batch, resent
    assert resent[0] == first_batch[1:]
    assert result.figures["pairs"][0]["removes_by_reason"] == {"no_consent": 1}


def test_full_resync_resends_everyone_and_still_removes(settings: Settings,
                                                        warehouse: Warehouse, meta) -> None:
    app, _ = meta
    warehouse.load([person(i) for i in range(1, 4)], {"lapsed": ["C0001", "C0002", "C0003"]})
    sync(settings)
    warehouse.load([person(i) for i in range(1, 4)], {"lapsed": ["C0001", "C0002"]})
    result = sync(settings, full=True)
    assert result.figures["adds"] == 2 and result.figures["removes"] == 1
    assert members_of(app) == {"C0001", "C0002"}
    assert app.added[(AUDIENCE, "C0001")] == 2


def test_dry_run_sends_nothing_and_changes_nothing(settings: Settings, warehouse: Warehouse,
                                                   meta) -> None:
    app, server = meta
    warehouse.load([person(1), person(2)], {"lapsed": ["C0001", "C0002"]})
    result = sync(settings, dry_run=True)
    assert server.requests == [] and "activation" not in {
        r[0] for r in warehouse.query("select schema_name from information_schema.schemata")}
    pair = result.figures["pairs"][0]
    assert pair["adds"] == 2 and pair["accepted"] == 0
    sample = pair["sample"][0]
    assert sample["values"]["EMAIL"] == sha("ayşe.1@example.com")
    assert any("sample lapsed → meta add C0001" in note for note in result.notes)
    sync(settings)
    requests = len(server.requests)
    warehouse.load([person(1)], {"lapsed": ["C0001"]})
    assert sync(settings, dry_run=True).figures["removes"] == 1
    assert len(server.requests) == requests
    assert set(state_rows(warehouse, "meta", "lapsed")) == {"C0001", "C0002"}


def test_missing_token_fails_before_sending(settings: Settings, warehouse: Warehouse, meta,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, server = meta
    monkeypatch.delenv("META_ACCESS_TOKEN")
    warehouse.load([person(1)], {"lapsed": ["C0001"]})
    with pytest.raises(CdpError, match="META_ACCESS_TOKEN"):
        sync(settings)
    assert server.requests == []
