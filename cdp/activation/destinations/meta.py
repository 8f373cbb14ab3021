"""Meta Custom Audiences: add with POST, remove with DELETE on /{audience_id}/users.

Body (a multipart form field, as in Meta's docs):
    payload={"schema": ["EMAIL", "PHONE", ...], "data": [["<sha256>", "<sha256>", ...], ...]}
at most 10,000 rows per request. Keys are normalised and hashed as payload.meta_keys says;
EXTERN_ID is our customer id, unhashed. Adds and removes are idempotent on Meta's side, so a
batch resent after a crash does no harm. The token goes in the Authorization header, never in
the URL.
"""

from __future__ import annotations

import json

import requests

from cdp.activation.config import MetaDestination, secret
from cdp.activation.destinations.base import ADD, Adapter, Batch, BatchResult
from cdp.activation.payload import SENDABLE_META, meta_keys
from cdp.config import Settings

# Graph API throttling codes (sent with HTTP 400/403): app, user, page and ad-account limits.
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80003, 80004})


def _error(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body.get("error", {}) if isinstance(body, dict) else {}


def throttled(response: requests.Response) -> bool:
    return response.status_code >= 400 and _error(response).get("code") in THROTTLE_CODES


def describe(response: requests.Response) -> str:
    """Error type and codes only: Meta's messages can quote the data sent."""
    err = _error(response)
    parts = [str(err[k]) for k in ("type", "code", "error_subcode") if err.get(k) is not None]
    return " ".join(parts)


class MetaAdapter(Adapter):
    config: MetaDestination

    def __init__(self, config: MetaDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = meta_keys(config.schema_, settings.default_region)
        self.sendable = SENDABLE_META
        self.client = None

    def prepare(self) -> None:
        self.token = secret(self.config.token_env, self.name, "Meta access token")
        self.client = self.http(retryable=throttled, describe_error=describe)

    def body(self, batch: Batch) -> str:
        """The `payload` form field: {"schema": [...], "data": [[...], ...]}."""
        names = [k.name for k in self.keys]
        schema = json.dumps(names, separators=(",", ":"))
        data = batch.json_rows(names)
        if data is None:
            data = json.dumps(batch.values(names), separators=(",", ":"), ensure_ascii=False)
        return f'{{"schema":{schema},"data":{data}}}'


    def send(self, batch: Batch) -> BatchResult:
        assert self.client is not None
        audience = self.config.audiences[batch.segment]
        outcome = self.client.request(
            "POST" if batch.operation == ADD else "DELETE",
            f"{self.config.base_url.rstrip('/')}/{audience}/users",
            # multipart/form-data, as `curl -F 'payload=...'` in Meta's docs; percent-encoding
            # megabytes of JSON as x-www-form-urlencoded would cost seconds per batch.
            files={"payload": (None, self.body(batch))},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if not outcome.ok:
            return BatchResult.from_outcome(outcome, len(batch))
        body = outcome.json() or {}
        # Meta reports how many rows it could not parse, not which: the batch counts as
        # delivered (resending the same rows cannot fix them) and the number is logged.
        invalid = int(body.get("num_invalid_entries", 0) or 0)
        return BatchResult.ok(len(batch), rejected=min(invalid, len(batch)))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
