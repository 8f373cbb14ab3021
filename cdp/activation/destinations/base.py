"""The interface every destination implements, and the batch it receives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from cdp.activation.config import RetrySettings, _Destination
from cdp.activation.http import HttpClient, Outcome
from cdp.activation.payload import SEPARATOR, Key
from cdp.config import Settings

ADD = "add"
REMOVE = "remove"
ROW_SEPARATOR = "\x1e"
# Characters a JSON string must escape (the two separators excepted: they are replaced).
_NEEDS_ESCAPING = re.compile(r'["\\\x00-\x1d]')


@dataclass
class Batch:
    """Rows of one operation for one (segment, destination). `batch_id` is stable: a batch
    resent after a crash carries the same id (the Idempotency-Key of webhooks)."""

    batch_id: str
    destination: str
    segment: str
    operation: str  # add | remove
    created_at: datetime
    customer_ids: list[str]
    reasons: list[str]
    layouts: list[str]  # the key names of each payload, comma-joined
    payloads: list[str]  # the values, joined by payload.SEPARATOR

    def __len__(self) -> int:
        return len(self.customer_ids)

    def values(self, names: Sequence[str]) -> list[list[str]]:
        """Each member's values for `names` ('' when missing). A payload stored under another
        layout (the destination's keys changed since) is mapped by key name."""
        wanted = ",".join(names)
        rows: list[list[str]] = []
        for layout, payload in zip(self.layouts, self.payloads, strict=True):
            values = payload.split(SEPARATOR)
            if layout != wanted:
                stored = dict(zip(layout.split(","), values, strict=False))
                values = [stored.get(name, "") for name in names]
            rows.append(values)
        return rows

    def json_rows(self, names: Sequence[str]) -> str | None:
        """The rows as a JSON array of arrays of strings, built by string replacement when
        every payload has this layout and no value needs escaping (hashes never do);
        None otherwise (use json.dumps on `values`). A 10,000-row Meta body in milliseconds."""
        layout = ",".join(names)
        if not self.payloads or any(other != layout for other in self.layouts):
            return None
        joined = ROW_SEPARATOR.join(self.payloads)
        if _NEEDS_ESCAPING.search(joined):
            return None
        return ('[["' + joined.replace(SEPARATOR, '","').replace(ROW_SEPARATOR, '"],["')
                + '"]]')

    def records(self, names: Sequence[str]) -> list[dict[str, str | None]]:
        """Each member as {key: value or None}."""
        return [{name: value or None for name, value in zip(names, row, strict=True)}
                for row in self.values(names)]


@dataclass
class BatchResult:
    """accepted: the destination took the batch (minus `rejected_rows`, indexes into it);
    rejected: it refused the whole batch for good (4xx); failed: not delivered, retry later."""

    status: str
    accepted: int
    rejected: int
    rejected_rows: set[int] = field(default_factory=set)
    error: str | None = None

    @classmethod
    def ok(cls, size: int, rejected_rows: set[int] | None = None,
           rejected: int | None = None) -> BatchResult:
        rows = rejected_rows or set()
        count = len(rows) if rejected is None else rejected
        return cls("accepted", size - count, count, rows)

    @classmethod
    def from_outcome(cls, outcome: Outcome, size: int) -> BatchResult:
        """A request that did not succeed: rejected (permanent) or failed (retry next run)."""
        if outcome.status == "rejected":
            return cls("rejected", 0, size, error=outcome.error)
        return cls("failed", 0, 0, error=outcome.error)


class Adapter:
    """One configured destination. `prepare` reads secrets and opens connections (skipped
    in a dry run); `send` delivers one batch; `finish` closes an operation group."""

    # Results are only final after `finish` (Google runs the job at the end).
    deferred: ClassVar[bool] = False

    def __init__(self, config: _Destination, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.name = config.name
        self.keys: list[Key] = []
        # Alternatives of keys that make a member matchable; None: every member is sent.
        self.sendable: Sequence[Sequence[str]] | None = None

    @property
    def retry(self) -> RetrySettings:
        assert self.config.retry is not None
        return self.config.retry

    @property
    def replace_on_change(self) -> bool:
        return self.config.replace_on_change

    @property
    def purpose(self) -> str:
        return self.config.purpose  # type: ignore[attr-defined]

    @property
    def batch_size(self) -> int:
        return self.config.batch_size  # type: ignore[attr-defined]

    def http(self, **kwargs: object) -> HttpClient:
        return HttpClient(self.retry, **kwargs)  # type: ignore[arg-type]

    def prepare(self) -> None:
        """Read secrets, open connections. Raises CdpError when something is missing."""

    def send(self, batch: Batch) -> BatchResult:
        raise NotImplementedError

    def finish(self, segment: str, operation: str) -> str | None:
        """End of an operation group; an error string revokes deferred results."""
        return None

    def close(self) -> None:
        """Release connections."""
