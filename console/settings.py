"""The console's settings, from NUDGE_CONSOLE_* variables (nudgelib.config), read once."""

from __future__ import annotations

from dataclasses import dataclass

from nudgelib.config import LogSettings, Settings, group, setting

DEFAULT_PORT = 8090


@dataclass(frozen=True)
class ConsoleSettings(Settings):
    # Where the console listens: NUDGE_CONSOLE_BIND_HOST, else NUDGE_BIND_HOST.
    bind_host: str = setting("NUDGE_CONSOLE_BIND_HOST", "127.0.0.1", fallback=("NUDGE_BIND_HOST",))
    port: int = setting("NUDGE_CONSOLE_PORT", DEFAULT_PORT, low=0, high=65535)
    # The services, as `nudge --target` takes them: empty means `make run`'s ports on
    # 127.0.0.1; HOST:PORT one address for all four (the edge); or
    # ingestion=HOST:PORT,segmentation=…,decision=…,delivery=….
    target: str = setting("NUDGE_CONSOLE_TARGET", "")
    # TLS to the services or the edge: NUDGE_TLS_CA_FILE (and NUDGE_TLS_CERT_FILE,
    # NUDGE_TLS_KEY_FILE for a client certificate), read by nudgelib.tls.client_credentials as
    # for the CLI.
    # A session ends after this many minutes without a request (sliding), and in any case
    # after NUDGE_CONSOLE_SESSION_MAX_HOURS.
    session_idle_minutes: float = setting("NUDGE_CONSOLE_SESSION_IDLE_MINUTES", 30.0, low=1, high=24 * 60)
    session_max_hours: float = setting("NUDGE_CONSOLE_SESSION_MAX_HOURS", 12.0, low=0.1, high=7 * 24)
    # Mark the session cookie Secure (set it when the console is served over HTTPS, as behind
    # a TLS-terminating proxy in Kubernetes).
    secure_cookie: str = setting("NUDGE_CONSOLE_SECURE_COOKIE", "false", choices=("true", "false"))
    # Seconds per call to the services, retries included.
    call_timeout: float = setting("NUDGE_CONSOLE_CALL_TIMEOUT_SECONDS", 10.0, low=0.1, high=300)
    # Where the built browser files are (htmx, the web SDK's bundle); empty: console/build in
    # the checkout (`make console` fills it).
    assets_dir: str = setting("NUDGE_CONSOLE_ASSETS_DIR", "")
    log: LogSettings = group(LogSettings)

    @property
    def cookie_secure(self) -> bool:
        return self.secure_cookie == "true"
