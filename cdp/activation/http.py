"""HTTP with retries: exponential backoff with jitter, `Retry-After` honoured on 429 and 503.

A request ends in one of three outcomes:
  ok        2xx (the destination may still report rows it rejected inside the body)
  rejected  a 4xx other than 408/429: retrying the same request cannot succeed
  failed    still 429 / 5xx / timeout / connection error after every attempt: the batch is
            kept and retried on the next run

Errors carry the status and the platform's error code, never the response body (which may
echo identifiers) or the URL's query string.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from cdp.activation.config import RetrySettings

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

# Module-level so tests can record waits instead of sleeping.
sleep: Callable[[float], None] = time.sleep


@dataclass
class Outcome:
    status: str  # ok | rejected | failed
    response: requests.Response | None
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def json(self) -> Any:
        try:
            return self.response.json() if self.response is not None else None
        except ValueError:
            return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(attempt: int, policy: RetrySettings, rng: Callable[[], float]) -> float:
    """attempt 0, 1, 2...: base * 2**attempt, capped; the upper half is jittered so clients
    retrying together spread out."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2 ** attempt))
    return ceiling / 2 + rng() * ceiling / 2


class HttpClient:
    """A requests.Session with the retry policy of one destination."""

    def __init__(self, policy: RetrySettings, rng: Callable[[], float] = random.random,
                 retryable: Callable[[requests.Response], bool] | None = None,
                 describe_error: Callable[[requests.Response], str] | None = None) -> None:
        self.policy = policy
        self.rng = rng
        self.session = requests.Session()
        # A platform may signal throttling with a 200/400 and a code in the body (Meta does).
        self.retryable = retryable or (lambda response: False)
        self.describe_error = describe_error or (lambda response: "")

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, url: str, **kwargs: Any) -> Outcome:
        kwargs.setdefault("timeout", self.policy.timeout)
        error = ""
        for attempt in range(self.policy.attempts):
            wait: float | None = None
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = f"{type(exc).__name__}"
                response = None
            if response is not None:
                status = response.status_code
                throttled = self.retryable(response)
                if 200 <= status < 300 and not throttled:
                    return Outcome("ok", response, attempts=attempt + 1)
                detail = self.describe_error(response)
                error = f"HTTP {status}" + (f" ({detail})" if detail else "")
                if status not in RETRYABLE_STATUS and not throttled:
                    return Outcome("rejected", response, error, attempt + 1)
                if status in (429, 503):
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                    if wait is not None and wait > self.policy.max_retry_after:
                        return Outcome("failed", response,
                                       f"{error}; Retry-After {wait:.0f}s exceeds the "
                                       f"{self.policy.max_retry_after:.0f}s limit",
                                       attempt + 1)
            if attempt + 1 < self.policy.attempts:
                sleep(wait if wait is not None else backoff_delay(attempt, self.policy,
                                                                  self.rng))
        return Outcome("failed", response if response is not None else None,
                       f"{error} after {self.policy.attempts} attempts",
                       self.policy.attempts)
