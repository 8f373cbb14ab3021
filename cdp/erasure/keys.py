"""The erasure key: what makes tombstones one-way.

A tombstone holds a keyed BLAKE2b digest (a MAC, RFC 7693; four times faster than HMAC-SHA256
in Python, which matters: ingest checks every row) of `kind + value`, for a normalised
identifier or a (source, source record id), never the value. A plain SHA-256 of a phone number
is reversed by trying the ~10^10 numbers of a country in minutes; with a secret key it cannot
be, by anyone who holds the tombstones but not the key.

Where the key lives, first found wins:
  1. the environment variable named by `erasure.key_env` (default `CDP_ERASURE_KEY`), which
     production sets from its secret store, so lake backups carry no usable key;
  2. the file `erasure.key_file` (default `{data_dir}/secrets/erasure.key`, mode 0600), made on
     the first `cdp forget` when neither exists: zero set-up for a demo, but anyone holding the
     whole data directory holds the key too.
Every tombstone file records a check value of the key it was made with, so a changed or lost
key is a clear error rather than tombstones that silently stop matching.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.io import atomic_path

_CHECK_MESSAGE = b"cdp-erasure-key-check"
_MIN_KEY_CHARS = 32


def key_file(settings: Settings) -> Path:
    raw = str(settings.erasure.key_file).replace(
        "{data_dir}", str(settings.resolved_paths.data_dir))
    path = Path(raw)
    return path if path.is_absolute() else (settings.root / path).resolve()


def load_key(settings: Settings, create: bool = False) -> bytes | None:
    """The key from the environment or the key file; None when neither exists and `create`
    is false; with `create`, a new random key is written to the key file."""
    name = settings.erasure.key_env
    if value := os.environ.get(name, "").strip():
        if len(value) < _MIN_KEY_CHARS:
            raise CdpError(f"the erasure key in ${name} is shorter than {_MIN_KEY_CHARS} "
                           "characters; use e.g. `python -c 'import secrets; "
                           "print(secrets.token_hex(32))'`")
        return value.encode("utf-8")
    path = key_file(settings)
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        if len(text) < _MIN_KEY_CHARS:
            raise CdpError(f"the erasure key file {path} is shorter than {_MIN_KEY_CHARS} "
                           "characters")
        return text.encode("utf-8")
    if not create:
        return None
    text = secrets.token_hex(32)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.chmod(0o600)
    return text.encode("utf-8")


def _mac_key(key: bytes) -> bytes:
    return key if len(key) <= hashlib.blake2b.MAX_KEY_SIZE else hashlib.sha256(key).digest()


def key_check(key: bytes) -> str:
    """A short value that tells keys apart without revealing them (stored with tombstones)."""
    return hashlib.blake2b(_CHECK_MESSAGE, key=_mac_key(key), digest_size=8).hexdigest()


def digest(key: bytes, kind: str, value: str) -> str:
    """The keyed digest of one normalised identifier (`kind` = email, phone, ...) or record
    (`kind` = record, `value` = source + US + source record id)."""
    return hashlib.blake2b(f"{kind}\x1f{value}".encode("utf-8", "surrogateescape"),
                           key=_mac_key(key), digest_size=32).hexdigest()


def record_value(source: str, record_id: str) -> str:
    return f"{source}\x1f{record_id}"
