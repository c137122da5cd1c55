"""The console on a real port in the test's event loop, talking to services at `target`,
with a clock the test moves (session expiry), and an HTTP client that signs in as a person
would: the sign-in page, its CSRF token, the key."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from console.app import build_app
from console.settings import ConsoleSettings

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """Monotonic time plus an offset the test adds to."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class RunningConsole:
    url: str
    clock: Clock
    app: Any

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=30)

    @asynccontextmanager
    async def signed_in(self, key: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.client() as http:
            response = await sign_in(http, key)
            assert response.status_code == 303, response.text
            yield http


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"csrf": csrf_of(page.text), "key": key, "next": "/campaigns"})


async def signs_in(url: str, key: str) -> bool:
    """Whether the console at `url` takes `key` at its sign-in page (it asks the services)."""
    async with httpx.AsyncClient(base_url=url, follow_redirects=False, timeout=30) as http:
        return (await sign_in(http, key)).status_code == 303


@asynccontextmanager
async def running_console(target: Any, env: dict[str, str] | None = None) -> AsyncIterator[RunningConsole]:
    settings = ConsoleSettings.from_env({"NUDGE_LOG_LEVEL": "warning", **(env or {})})
    clock = Clock()
    app = build_app(settings, target=target, clock=clock)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield RunningConsole(f"http://127.0.0.1:{sock.getsockname()[1]}", clock, app)
    finally:
        server.should_exit = True
        await task
        sock.close()
