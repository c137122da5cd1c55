"""`python -m console`: read NUDGE_CONSOLE_* once (a bad value stops start-up with one line,
exit status 2), configure logging, and serve the console with uvicorn until SIGTERM or
Ctrl-C (uvicorn's own graceful shutdown: open requests finish, then the sessions' channels
are closed)."""

from __future__ import annotations

import signal
import sys

import structlog
import uvicorn

from console.app import assets_dir, build_app
from console.settings import ConsoleSettings
from nudgelib.config import ConfigError
from nudgelib.logs import configure_logging


def main() -> None:
    try:
        settings = ConsoleSettings.from_env()
        app = build_app(settings)
    except ConfigError as exc:
        print(f"nudge-console: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("console", settings.log)
    log = structlog.get_logger()
    if not (assets_dir(settings) / "nudge.js").exists():
        # The pages work without it; previews cannot be drawn.
        log.warning("console_assets_missing", folder=str(assets_dir(settings)), fix="make console")
    log.info("console_listening", url=f"http://{settings.bind_host}:{settings.port}")
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler that was there before: this one, so a stop asked for is exit status 0, as the
    # services' is.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(app, host=settings.bind_host, port=settings.port, log_level=settings.log.level,
                access_log=False, server_header=False, proxy_headers=False)


if __name__ == "__main__":
    main()
