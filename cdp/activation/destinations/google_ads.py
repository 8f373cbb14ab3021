"""Google Ads Customer Match through OfflineUserDataJobService, REST shape (v2x):

    POST {base}/customers/{cid}/offlineUserDataJobs:create
         {"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                  "customerMatchUserListMetadata": {"userList": "customers/{cid}/userLists/{id}",
                                                    "consent": {...}}}}
         -> {"resourceName": "customers/{cid}/offlineUserDataJobs/{job}"}
    POST {base}/{resourceName}:addOperations   (<= 10,000 operations per request)
         {"operations": [{"create": {"userIdentifiers": [...], "consent": {...}}}, ...],
          "enablePartialFailure": true}
    POST {base}/{resourceName}:run

One identifier per UserIdentifier (hashedEmail, hashedPhoneNumber, or addressInfo with hashed
names and unhashed countryCode / postalCode), at most 20 per user. Consent (adUserData,
adPersonalization) comes from our opt-in flags, per user and on the job.

One job per (segment, operation) and run: batches are staged with addOperations and only count
as delivered once :run succeeds (the adapter is `deferred`). A crash before :run leaves the
batches in the outbox; the next run stages them in a new job. Create/remove are idempotent
on Google's side.
"""

from __future__ import annotations

import requests

from cdp.activation.config import GoogleAdsDestination, secret
from cdp.activation.destinations.base import ADD, Adapter, Batch, BatchResult
from cdp.activation.http import Outcome
from cdp.activation.payload import SENDABLE_GOOGLE, google_keys
from cdp.config import Settings

MAX_IDENTIFIERS_PER_USER = 20


def describe(response: requests.Response) -> str:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return ""
    return str(error.get("status", "")) if isinstance(error, dict) else ""


def rejected_operations(body: dict | None) -> set[int]:
    """Indexes of operations a partial failure names (fieldPathElements operations[i])."""
    failure = (body or {}).get("partialFailureError") or {}
    rows: set[int] = set()
    for detail in failure.get("details", []) or []:
        for error in detail.get("errors", []) or []:
            for element in (error.get("location") or {}).get("fieldPathElements", []) or []:
                if element.get("fieldName") == "operations" and "index" in element:
                    rows.add(int(element["index"]))
    return rows


class GoogleAdsAdapter(Adapter):
    config: GoogleAdsDestination
    deferred = True

    def __init__(self, config: GoogleAdsDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = google_keys(config.identifiers, settings.default_region,
                                config.ad_user_data_from, config.ad_personalization_from)
        self.sendable = SENDABLE_GOOGLE
        self.client = None
        self.job: str | None = None
        self.staged = 0

    def prepare(self) -> None:
        token = secret(self.config.token_env, self.name, "OAuth access token")
        developer = secret(self.config.developer_token_env, self.name, "developer token")
        self.headers = {"Authorization": f"Bearer {token}", "developer-token": developer}
        if self.config.login_customer_id:
            self.headers["login-customer-id"] = self.config.login_customer_id
        self.client = self.http(describe_error=describe)

    @property
    def base(self) -> str:
        return self.config.base_url.rstrip("/")

    def _post(self, path: str, body: dict) -> Outcome:
        assert self.client is not None
        return self.client.request("POST", f"{self.base}/{path}", json=body,
                                   headers=self.headers)

    def _create_job(self, segment: str, operation: str) -> Outcome:
        cid = self.config.customer_id
        metadata: dict = {
            "userList": f"customers/{cid}/userLists/{self.config.user_lists[segment]}"}
        if operation == ADD:
            # Only members whose purpose consent is true are ever added; per-user consent
            # below overrides this where a flag differs.
            metadata["consent"] = {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}
        outcome = self._post(f"customers/{cid}/offlineUserDataJobs:create", {
            "job": {"type": "CUSTOMER_MATCH_USER_LIST",
                    "customerMatchUserListMetadata": metadata}})
        if outcome.ok:
            self.job = (outcome.json() or {}).get("resourceName")
            if not self.job:
                return Outcome("failed", outcome.response, "create job: no resourceName")
        return outcome

    def user_data(self, row: dict[str, str | None], operation: str) -> dict:
        identifiers: list[dict] = []
        if row.get("hashedEmail"):
            identifiers.append({"hashedEmail": row["hashedEmail"]})
        if row.get("hashedPhoneNumber"):
            identifiers.append({"hashedPhoneNumber": row["hashedPhoneNumber"]})
        if all(row.get(k) for k in ("hashedFirstName", "hashedLastName", "countryCode",
                                    "postalCode")):
            identifiers.append({"addressInfo": {
                "hashedFirstName": row["hashedFirstName"],
                "hashedLastName": row["hashedLastName"],
                "countryCode": row["countryCode"],
                "postalCode": row["postalCode"],
            }})
        data: dict = {"userIdentifiers": identifiers[:MAX_IDENTIFIERS_PER_USER]}
        if operation == ADD:
            data["consent"] = {"adUserData": row.get("adUserData") or "DENIED",
                               "adPersonalization": row.get("adPersonalization") or "DENIED"}
        return data

    def send(self, batch: Batch) -> BatchResult:
        if self.job is None:
            outcome = self._create_job(batch.segment, batch.operation)
            if not outcome.ok:
                return BatchResult.from_outcome(outcome, len(batch))
        kind = "create" if batch.operation == ADD else "remove"
        operations = [{kind: self.user_data(row, batch.operation)}
                      for row in batch.records([k.name for k in self.keys])]
        outcome = self._post(f"{self.job}:addOperations",
                             {"operations": operations, "enablePartialFailure": True})
        if not outcome.ok:
            return BatchResult.from_outcome(outcome, len(batch))
        rejected = rejected_operations(outcome.json()) & set(range(len(batch)))
        self.staged += len(batch) - len(rejected)
        return BatchResult.ok(len(batch), rejected)

    def finish(self, segment: str, operation: str) -> str | None:
        """Run the job: only now do its staged operations count as delivered."""
        job, staged = self.job, self.staged
        self.job, self.staged = None, 0
        if job is None or staged == 0:
            return None
        outcome = self._post(f"{job}:run", {})
        return None if outcome.ok else f"run job: {outcome.error}"

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
