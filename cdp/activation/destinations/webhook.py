"""Webhook: JSON batches POSTed to any URL.

Body: {"batch_id", "destination", "segment", "operation": "add"|"remove", "count",
       "members": [{<fields>..., "reason": ...}]}
Headers: `Idempotency-Key: <batch_id>`; with `secret_env`, `X-CDP-Timestamp: <unix seconds>`
and `X-CDP-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>`.

Delivery is at-least-once with a stable key: a batch whose outcome is unknown (crash after the
request, timeout, 5xx) is resent later with the *same* batch_id, so a receiver that keeps the
keys it has processed applies every batch exactly once. Receivers must dedupe on the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from cdp.activation.config import WebhookDestination, secret
from cdp.activation.destinations.base import REMOVE, Adapter, Batch, BatchResult
from cdp.activation.payload import generic_keys
from cdp.config import Settings


def signature(secret_value: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret_value.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookAdapter(Adapter):
    config: WebhookDestination

    def __init__(self, config: WebhookDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = generic_keys(config.fields, settings.default_region)
        self.client = None

    def prepare(self) -> None:
        self.url = self.config.url or secret(self.config.url_env or "", self.name, "URL")
        self.secret = (secret(self.config.secret_env, self.name, "signing secret")
                       if self.config.secret_env else None)
        self.secret_headers = {header: secret(env, self.name, f"{header} header")
                               for header, env in self.config.header_envs.items()}
        self.client = self.http()

    def body(self, batch: Batch) -> bytes:
        names = [k.name for k in self.keys]
        members = []
        for member, reason in zip(batch.records(names), batch.reasons, strict=True):
            if batch.operation == REMOVE:
                member["reason"] = reason
            members.append(member)
        return json.dumps({
            "batch_id": batch.batch_id, "destination": batch.destination,
            "segment": batch.segment, "operation": batch.operation, "count": len(batch),
            "members": members,
        }, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def send(self, batch: Batch) -> BatchResult:
        assert self.client is not None
        raw = self.body(batch)
        headers = {**self.config.headers, **self.secret_headers,
                   "Content-Type": "application/json", "Idempotency-Key": batch.batch_id}
        if self.secret:
            stamp = str(int(time.time()))
            headers["X-CDP-Timestamp"] = stamp
            headers["X-CDP-Signature"] = signature(self.secret, stamp, raw)
        outcome = self.client.request("POST", self.url, data=raw, headers=headers)
        if not outcome.ok:
            return BatchResult.from_outcome(outcome, len(batch))
        return BatchResult.ok(len(batch))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
