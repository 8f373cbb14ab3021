"""The local explorer (`cdp serve`) and the static identity-quality report (`cdp report`).

    from cdp.web import create_app, serve, write_report

Read-only over the warehouse; see cdp/web/README.md for the pages and the security model.
Imports are late so `import cdp.web` stays light (uvicorn and plotly load when used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from cdp.config import Settings
    from cdp.summary import StepSummary


def create_app(settings: Settings, token: str | None = None,
               allowed_hosts: list[str] | None = None) -> Starlette:
    from cdp.web.app import create_app as make

    return make(settings, token=token, allowed_hosts=allowed_hosts)


def serve(settings: Settings, **options: Any) -> StepSummary:
    from cdp.web.server import serve as run

    return run(settings, **options)


def write_report(settings: Settings) -> StepSummary:
    from cdp.web.report import write_report as write

    return write(settings)


__all__ = ["create_app", "serve", "write_report"]
