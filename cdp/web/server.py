"""`cdp serve`: run the explorer with uvicorn until interrupted."""

from __future__ import annotations

import time

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary
from cdp.web.security import LOOPBACK_NAMES, MIN_TOKEN_LENGTH, TOKEN_ENV, is_loopback


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None) -> StepSummary:
    """Serve the explorer on host:port until Ctrl-C (or SIGTERM).

    On a loopback address no token is needed (one may still be set); on any other address a
    token of at least MIN_TOKEN_LENGTH characters is required, and every request must carry it.
    """
    import uvicorn

    from cdp.web.app import create_app

    loopback = is_loopback(host)
    if not loopback and not token:
        raise CdpError(f"--host {host} is reachable from other machines: give a token "
                       f"(--token or ${TOKEN_ENV}) that every request must carry, or bind "
                       "127.0.0.1")
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise CdpError(f"the token is too short: use at least {MIN_TOKEN_LENGTH} characters")
    if not settings.resolved_paths.warehouse.exists():
        # Not fatal (pages explain it), but say it up front.
        print(f"note: no warehouse at {settings.resolved_paths.warehouse} yet: run `cdp run`")
    allowed = [*LOOPBACK_NAMES, host] if loopback else None
    app = create_app(settings, token=token, allowed_hosts=allowed)
    # No access log: query strings hold search terms (emails, phones) and the login token.
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info",
                            server_header=False)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    print(f"cdp explorer on http://{shown}:{port}/ (read-only; "
          f"{'token required' if token else 'no token: loopback only'}); Ctrl-C stops it")
    started = time.perf_counter()
    server.run()
    if not server.started:
        raise CdpError(f"could not serve on {host}:{port} (address in use, or not allowed)")
    summary = StepSummary(title="serve")
    summary.add("served", f"http://{shown}:{port}/ for {time.perf_counter() - started:,.0f} s")
    return summary
