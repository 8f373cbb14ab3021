"""A real, throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir on a free port."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[int]:
    """Start a server (trust auth, superuser `cdp`, data and socket in a temp dir) and yield its
    port on 127.0.0.1; stop and remove it afterwards. Skips the test when the binaries are absent.
    As root it runs as the postgres user, because initdb refuses to run as root."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL binaries initdb / pg_ctl are not on PATH")
    folder = Path(tempfile.mkdtemp(prefix="cdp-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    try:
        subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "cdp",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w",
                        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                              "-c fsync=off", "start"], check=True, capture_output=True)
        yield port
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True)
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
