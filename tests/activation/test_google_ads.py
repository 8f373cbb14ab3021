"""Google Ads Customer Match, against a local HTTP server on 127.0.0.1 standing in for the
Google Ads API's OfflineUserDataJobService (REST), which tests cannot reach. The stand-in
checks paths, headers, job shape, <= the batch size of operations, one identifier per
UserIdentifier, hashed / unhashed fields and consent; the job only counts once it runs."""

from __future__ import annotations

import hashlib

import pytest

from cdp.activation import sync
from cdp.config import Settings
from tests.activation.conftest import Warehouse, configure, person, state_rows
from tests.activation.fakes import GoogleCustomerMatch

CID = "1234567890"
LIST = f"customers/{CID}/userLists/555"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def google(settings: Settings, serve, monkeypatch: pytest.MonkeyPatch, waits: list[float]):
    monkeypatch.setenv("GOOGLE_ADS_ACCESS_TOKEN", "oauth-token")
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", "dev-token")
    app = GoogleCustomerMatch(customer_id=CID, token="oauth-token", developer_token="dev-token",
                              login_customer_id="9876543210", max_operations=2)
    server = serve(app)
    configure(settings, {"google": {
        "type": "google_ads", "base_url": f"{server.url}/v21", "customer_id": CID,
        "login_customer_id": "9876543210", "user_lists": {"lapsed": "555"}, "batch_size": 2}})
    return app, server


def test_customer_match_job_contract(settings: Settings, warehouse: Warehouse, google) -> None:
    app, server = google
    people = [person(1), person(2, email=None), person(3, phone=None, email=None),
              person(4, email=None, phone=None, postcode=None), person(5, ads_opt_in=False)]
    warehouse.load(people, {"lapsed": [p["customer_id"] for p in people]})
    result = sync(settings)
    assert result.ok, result.notes
    pair = result.figures["pairs"][0]
    # C0004 has no email, phone or complete address: nothing Google can match, not sent.
    assert pair["skipped_no_identifier"] == 1 and pair["skipped_no_consent"] == 1
    assert pair["adds"] == 3 and pair["accepted"] == 3
    assert app.batch_sizes == [2, 1]  # one job, two addOperations calls, then :run
    assert len(app.jobs) == 1 and all(job["ran"] for job in app.jobs.values())
    job = next(iter(app.jobs.values()))
    assert job["consent"] == {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}
    users = app.lists[LIST]
    first = users[sha("ayşe.1@example.com")]
    assert first["userIdentifiers"] == [
        {"hashedEmail": sha("ayşe.1@example.com")},
        {"hashedPhoneNumber": sha("+905320000001")},  # E.164 with '+'
        {"addressInfo": {"hashedFirstName": sha("ayşe"), "hashedLastName": sha("şahin"),
                         "countryCode": "TR", "postalCode": "34001"}},
    ]
    assert first["consent"] == {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}
    assert sha("+905320000002") in users  # phone-only member keyed by its phone
    assert server.problems == []

    warehouse.load(people, {"lapsed": ["C0002", "C0003"]})
    second = sync(settings)
    assert second.figures["removes"] == 1 and second.figures["adds"] == 0
    assert sha("ayşe.1@example.com") not in app.lists[LIST]
    assert len(app.jobs) == 2  # a remove job
    assert server.problems == []


def test_partial_failure_rows_are_not_marked_delivered(settings: Settings,
                                                       warehouse: Warehouse, google) -> None:
    app, _ = google
    app.reject_emails = {sha("elif.6@example.com")}
    people = [person(5), person(6), person(7)]
    warehouse.load(people, {"lapsed": ["C0005", "C0006", "C0007"]})
    result = sync(settings)
    assert result.figures["accepted"] == 2 and result.figures["rejected"] == 1
    assert set(state_rows(warehouse, "google", "lapsed")) == {"C0005", "C0007"}
    app.reject_emails = set()
    again = sync(settings)  # the rejected row is proposed again
    assert again.figures["adds"] == 1 and again.figures["accepted"] == 1
    assert set(state_rows(warehouse, "google", "lapsed")) == {"C0005", "C0006", "C0007"}


def test_job_that_fails_to_run_is_retried_next_run(settings: Settings, warehouse: Warehouse,
                                                   google) -> None:
    app, _ = google
    app.fail_run = True
    warehouse.load([person(1), person(2)], {"lapsed": ["C0001", "C0002"]})
    result = sync(settings)
    assert not result.ok and result.figures["accepted"] == 0
    # Staged operations only count once the job ran: nothing is marked delivered.
    assert set(state_rows(warehouse, "google", "lapsed").values()) == {"in_flight"}
    app.fail_run = False
    again = sync(settings)
    assert again.ok and again.figures["pairs"][0]["replayed_rows"] == 2
    assert set(app.lists[LIST]) == {sha("ayşe.1@example.com"), sha("ilkay.2@example.com")}
    assert set(state_rows(warehouse, "google", "lapsed").values()) == {"delivered"}
