"""TikTok customer file: a CSV with `Email_SHA256,Phone_SHA256` headers per batch.

Written to `folder` (`{folder}/{segment}/{time}-{add|remove}-{batch}.csv`, atomically; a batch
resent after a crash rewrites the same file) and, with `upload: true`, sent through the
Marketing API:
    POST {base}/dmp/custom_audience/file/upload/   multipart: advertiser_id, calculate_type
         MULTIPLE_TYPES, file_signature (MD5 of the file), file  -> data.file_path
    POST {base}/dmp/custom_audience/update/        {"advertiser_id", "custom_audience_id",
         "action": "APPEND" | "REMOVE", "file_paths": [file_path]}
with the token in the `Access-Token` header. TikTok answers HTTP 200 with a non-zero `code`
on errors; 40100 (too many requests) is retried like a 429.
"""

from __future__ import annotations

import csv
import hashlib
import io

import requests

from cdp.activation.config import TikTokDestination, expand_path, secret
from cdp.activation.destinations.base import ADD, Adapter, Batch, BatchResult
from cdp.activation.http import Outcome
from cdp.activation.payload import SENDABLE_TIKTOK, tiktok_keys
from cdp.config import Settings
from cdp.io import atomic_path

THROTTLE_CODES = frozenset({40100})


def _code(response: requests.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def throttled(response: requests.Response) -> bool:
    return _code(response) in THROTTLE_CODES


def describe(response: requests.Response) -> str:
    code = _code(response)
    return f"code {code}" if code is not None else ""


def customer_file(batch: Batch, headers: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(batch.values(headers))
    return buffer.getvalue().encode("utf-8")


class TikTokAdapter(Adapter):
    config: TikTokDestination

    def __init__(self, config: TikTokDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = tiktok_keys(settings.default_region)
        self.sendable = SENDABLE_TIKTOK
        self.client = None

    def prepare(self) -> None:
        if self.config.upload:
            self.token = secret(self.config.token_env, self.name, "TikTok access token")
            self.client = self.http(retryable=throttled, describe_error=describe)

    def file_name(self, batch: Batch) -> str:
        stamp = batch.created_at.strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{batch.operation}-{batch.batch_id[:12]}.csv"

    def send(self, batch: Batch) -> BatchResult:
        content = customer_file(batch, [k.name for k in self.keys])
        if self.config.folder:
            target = expand_path(self.config.folder, self.settings) / batch.segment
            with atomic_path(target / self.file_name(batch)) as tmp:
                tmp.write_bytes(content)
        if not self.config.upload:
            return BatchResult.ok(len(batch))
        return self._upload(batch, content)

    def _upload(self, batch: Batch, content: bytes) -> BatchResult:
        assert self.client is not None
        base = self.config.base_url.rstrip("/")
        headers = {"Access-Token": self.token}
        outcome = self.client.request(
            "POST", f"{base}/dmp/custom_audience/file/upload/", headers=headers,
            data={"advertiser_id": self.config.advertiser_id, "calculate_type": "MULTIPLE_TYPES",
                  "file_signature": hashlib.md5(content).hexdigest()},
            files={"file": (self.file_name(batch), content, "text/csv")},
        )
        body = outcome.json() if outcome.ok else None
        if not outcome.ok or (body or {}).get("code") != 0:
            return self._refused(outcome, body, len(batch), "upload")
        file_path = ((body or {}).get("data") or {}).get("file_path")
        outcome = self.client.request(
            "POST", f"{base}/dmp/custom_audience/update/", headers=headers,
            json={"advertiser_id": self.config.advertiser_id,
                  "custom_audience_id": self.config.audiences[batch.segment],
                  "action": "APPEND" if batch.operation == ADD else "REMOVE",
                  "file_paths": [file_path]},
        )
        body = outcome.json() if outcome.ok else None
        if not outcome.ok or (body or {}).get("code") != 0:
            return self._refused(outcome, body, len(batch), "update")
        return BatchResult.ok(len(batch))

    @staticmethod
    def _refused(outcome: Outcome, body: dict | None, size: int, step: str) -> BatchResult:
        if not outcome.ok:
            result = BatchResult.from_outcome(outcome, size)
        else:  # HTTP 200 carrying an error code: the request was understood and refused
            result = BatchResult("rejected", 0, size, error=f"code {(body or {}).get('code')}")
        result.error = f"{step}: {result.error}"
        return result

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
