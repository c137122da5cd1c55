"""The demo shop's backend: `python -m nudgetools.demo_server`, which `nudge run` starts (and
supervises) beside the services, as any app's own web server would run beside Nudge.

It serves the built shop page (clients/web/dist/demo) and two things the page asks its
backend for:

- `GET /config.json`: where the edge is and the app's `public` key, which ship in the page;
- `GET /token?user=ID`: a user token for ID, an ES256 JWT signed with the shop's private key
  (whose public half the app registered: nudgetools.demo.shop_signer). A real backend signs
  only for the user its own session has signed in; the demo signs for whoever asks, so that a
  visitor can be anyone.

And `GET /healthz`, answering once it serves. Its settings come from the environment
(`ServerSettings`); a missing or bad one stops it with one line, exit status 2.
"""

from __future__ import annotations

import json
import mimetypes
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from nudgelib.config import ConfigError, Settings, setting
from nudgetools.edge import admin_get

REPO = Path(__file__).resolve().parents[2]
# Where `make web-build` puts the shop page (scripts/build.mjs in clients/web).
SITE = REPO / "clients" / "web" / "dist" / "demo"
DEFAULT_PORT = 8070
# Tokens live an hour: the page fetches a new one when less than a minute is left.
TOKEN_LIFETIME_SECONDS = 3600
# As the services check `sub` (nudgelib.user_tokens).
MAX_USER_ID = 256


@dataclass(frozen=True)
class DemoSettings(Settings):
    """Where `nudge run` puts the demo shop."""

    bind_host: str = setting("NUDGE_BIND_HOST", "127.0.0.1")
    port: int = setting("NUDGE_DEMO_PORT", DEFAULT_PORT, low=1, high=65535)


@dataclass(frozen=True)
class ServerSettings(Settings):
    """What the server process is told by whoever starts it."""

    # The edge's base URL as the browser reaches it, e.g. http://127.0.0.1:8080.
    endpoint: str = setting("NUDGE_DEMO_ENDPOINT", schemes=("http://", "https://"))
    api_key: str = setting("NUDGE_DEMO_API_KEY", from_file=True)
    signing_key_file: str = setting("NUDGE_DEMO_SIGNING_KEY_FILE")
    signing_kid: str = setting("NUDGE_DEMO_SIGNING_KID")
    bind_host: str = setting("NUDGE_BIND_HOST", "127.0.0.1")
    port: int = setting("NUDGE_DEMO_PORT", DEFAULT_PORT, low=1, high=65535)
    site: str = setting("NUDGE_DEMO_SITE", str(SITE))


def user_problem(user: str) -> str | None:
    """Why `user` cannot be a token's subject, or None."""
    if not 1 <= len(user) <= MAX_USER_ID:
        return f"user must be 1 to {MAX_USER_ID} characters"
    return None


def sign(private_key: Any, kid: str, user: str, now: float, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    """The user token the services accept for `user`: ES256, `kid` naming the registered key."""
    issued = int(now)
    return jwt.encode({"sub": user, "iat": issued, "exp": issued + lifetime}, private_key,
                      algorithm="ES256", headers={"kid": kid})


class Site:
    """The page's files and what /config.json and /token answer."""

    def __init__(self, settings: ServerSettings) -> None:
        self.root = Path(settings.site).resolve()
        self.config = json.dumps({"endpoint": settings.endpoint, "apiKey": settings.api_key}).encode()
        self.kid = settings.signing_kid
        self.private_key = serialization.load_pem_private_key(Path(settings.signing_key_file).read_bytes(),
                                                              password=None)

    def file(self, path: str) -> Path | None:
        """The file a URL path names inside the site (`/` is index.html), never outside it."""
        relative = path.lstrip("/") or "index.html"
        candidate = (self.root / relative).resolve()
        if candidate.is_relative_to(self.root) and candidate.is_file():
            return candidate
        return None


def handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "nudge-demo"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            elif url.path == "/config.json":
                self._send(HTTPStatus.OK, site.config, "application/json")
            elif url.path == "/token":
                user = parse_qs(url.query).get("user", [""])[0]
                if problem := user_problem(user):
                    self._json(HTTPStatus.BAD_REQUEST, {"error": problem})
                else:
                    token = sign(site.private_key, site.kid, user, time.time())
                    self._json(HTTPStatus.OK, {"token": token, "expires_in": TOKEN_LIFETIME_SECONDS})
            elif (found := site.file(unquote(url.path))) is not None:
                kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind == "application/javascript":
                    kind += "; charset=utf-8"
                self._send(HTTPStatus.OK, found.read_bytes(), kind)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        def _json(self, status: HTTPStatus, body: dict) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            # A rebuilt page is seen on the next load; tokens are never kept by a cache.
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Only failures: a page load is a dozen requests.
            if len(args) > 1 and str(args[1])[:1] in "45":
                sys.stderr.write(f"nudge-demo: {self.address_string()} {format % args}\n")

    return Handler


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def origin(host: str, port: int) -> str:
    """The page's origin, as a browser on this machine sends it (the edge's CORS checks it)."""
    return f"http://{_reachable(host)}:{port}"


@dataclass(frozen=True)
class Sidecar:
    """The demo server as a process of `nudge run` (nudgetools.cluster starts and supervises it)."""

    host: str
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return origin(self.host, self.port)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "nudgetools.demo_server"]

    async def ready(self) -> bool:
        status, _ = await admin_get(_reachable(self.host), self.port, "/healthz")
        return status == 200


def sidecar(host: str, port: int, endpoint: str, api_key: str, signing_key_file: Path, kid: str,
            site: Path = SITE, base_env: dict[str, str] | None = None) -> Sidecar:
    env = {**(base_env or {}), "NUDGE_BIND_HOST": host, "NUDGE_DEMO_PORT": str(port), "NUDGE_DEMO_SITE": str(site),
           "NUDGE_DEMO_ENDPOINT": endpoint, "NUDGE_DEMO_API_KEY": api_key,
           "NUDGE_DEMO_SIGNING_KEY_FILE": str(signing_key_file), "NUDGE_DEMO_SIGNING_KID": kid}
    return Sidecar(host, port, env)


def main() -> int:
    try:
        settings = ServerSettings.from_env()
        site = Site(settings)
    except ConfigError as exc:
        print(f"nudge-demo: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"nudge-demo: cannot read the signing key: {exc}", file=sys.stderr)
        return 2
    try:
        server = ThreadingHTTPServer((settings.bind_host, settings.port), handler(site))
    except OSError as exc:
        print(f"nudge-demo: cannot listen on {settings.bind_host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 2
    server.daemon_threads = True
    # SIGTERM (the supervisor's stop) ends serve_forever from another thread, as it must.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
