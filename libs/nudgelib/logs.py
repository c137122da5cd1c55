"""structlog, configured once per process: console renderer on a TTY, JSON lines otherwise.

Per-call fields (`rpc`, `request_id`, `app_id`) are bound through contextvars by the server
interceptor, so every log line of a call carries them; with tracing on, so do the current
span's `trace_id` and `span_id` (nudgelib.tracing.trace_ids).
"""

from __future__ import annotations

import logging
import sys

import structlog

from nudgelib.config import LogSettings
from nudgelib.tracing import trace_ids


def console_renderer() -> structlog.dev.ConsoleRenderer:
    """Plain tracebacks whatever is installed: with `rich` present (the CLI draws its tables
    with it) structlog would draw each traceback with rich, a tenth of a second of CPU for
    every logged failure, enough to slow a service that is failing many calls."""
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


def configure_logging(service: str, settings: LogSettings, traced: bool = False) -> None:
    use_console = settings.format == "console" or (settings.format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        console_renderer() if use_console else structlog.processors.JSONRenderer()
    )
    level = getattr(logging, settings.level.upper())
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # Only with tracing on: off, a log line costs no span lookup.
            *([trace_ids] if traced else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            # The console renderer prints exceptions itself, prettier.
            *([] if use_console else [structlog.processors.format_exc_info]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
