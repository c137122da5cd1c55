"""The per-app cache of user token keys and the token check built on it
(nudgelib.user_token_keys), over a fake pool: one query per cold app, what a change drops and
what it leaves, a load that races a change, and streams held to their token."""

from __future__ import annotations

import asyncio
import time

import pytest

from nudgelib.clock import SystemClock
from nudgelib.errors import Unauthenticated
from nudgelib.user_token_keys import UserTokenKeyCache, UserTokens, changed_app
from nudgelib.user_tokens import TokenRules, parse_public_key
from tests.signing import SigningKey

RULES = TokenRules(max_lifetime=3600, leeway=30)


class FakePool:
    """The one query the cache makes, answered from rows the test edits."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.queries = 0
        self.gate: asyncio.Event | None = None

    def add(self, app_id: str, key: SigningKey) -> None:
        parsed = parse_public_key(key.public_pem, key.kid)
        self.rows.append({"app_id": app_id, "kid": parsed.kid, "algorithm": parsed.algorithm,
                          "public_key": parsed.public_key_pem, "revoked": False})

    def revoke(self, kid: str) -> None:
        for row in self.rows:
            if row["kid"] == kid:
                row["revoked"] = True

    async def fetch(self, _sql: str, app_id: str) -> list[dict]:
        self.queries += 1
        rows = [dict(r) for r in self.rows if r["app_id"] == app_id]
        if self.gate is not None:
            await self.gate.wait()
        return rows


@pytest.fixture
def key() -> SigningKey:
    return SigningKey("ES256", kid="k1")


@pytest.fixture
def pool(key) -> FakePool:
    pool = FakePool()
    pool.add("app_a", key)
    pool.add("app_b", SigningKey("ES256", kid="kb"))
    return pool


def tokens(pool: FakePool) -> UserTokens:
    return UserTokens(UserTokenKeyCache(pool), SystemClock(), RULES)


async def reason(call) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await call
    return caught.value.reason


def test_only_token_key_notifications_name_an_app():
    assert changed_app("user_token_keys:app_1") == "app_1"
    assert changed_app("") is None and changed_app(None) is None


async def test_calls_for_a_cold_app_share_one_query(pool, key):
    checker = tokens(pool)
    users = await asyncio.gather(*(checker.user_of("app_a", key.token(f"u{i}")) for i in range(5)))
    assert users == [f"u{i}" for i in range(5)] and pool.queries == 1
    await checker.user_of("app_a", key.token("u9"))
    assert pool.queries == 1


async def test_a_change_drops_only_its_apps_keys(pool, key):
    checker = tokens(pool)
    token = key.token("u")
    await checker.user_of("app_a", token)
    other = SigningKey("ES256", kid="kb")
    pool.rows[1]["public_key"] = parse_public_key(other.public_pem).public_key_pem
    await checker.user_of("app_b", other.token("v"))
    pool.revoke("k1")
    # Until the change is announced, what was loaded (and verified) holds.
    assert await checker.user_of("app_a", token) == "u"
    checker.invalidate("app_b")
    assert await checker.user_of("app_a", token) == "u"
    queries = pool.queries
    checker.invalidate("app_a")
    assert await reason(checker.user_of("app_a", token)) == "USER_TOKEN_KEY_REVOKED"
    assert pool.queries == queries + 1
    # Missed notifications (None) drop every app.
    checker.invalidate()
    await checker.user_of("app_b", other.token("v"))
    assert pool.queries == queries + 2


async def test_a_load_that_raced_a_change_answers_its_callers_but_is_not_kept(pool, key):
    checker = tokens(pool)
    pool.gate = asyncio.Event()
    first = asyncio.ensure_future(checker.user_of("app_a", key.token("u")))
    while pool.queries == 0:  # until the load has read the rows (key active) and waits
        await asyncio.sleep(0)
    pool.revoke("k1")
    checker.invalidate("app_a")
    pool.gate.set()
    assert await first == "u"
    assert await reason(checker.user_of("app_a", key.token("u"))) == "USER_TOKEN_KEY_REVOKED"
    assert pool.queries == 2


class Forever:
    """A stream that yields one item and then waits, as a quiet Subscribe does."""

    def __init__(self) -> None:
        self.closed = False

    async def items(self):
        try:
            yield "first"
            await asyncio.Event().wait()
        finally:
            self.closed = True


async def test_a_held_stream_ends_when_its_token_expires(pool, key):
    checker = tokens(pool)
    now = time.time()
    token = key.token("u", iat=now - 29.7, exp=now - 29.5)  # good for half a second more
    stream = Forever()
    held = checker.held("app_a", token, stream.items())
    assert await anext(held) == "first"
    started = time.monotonic()
    assert await reason(anext(held)) == "USER_TOKEN_EXPIRED"
    assert 0.2 < time.monotonic() - started < 3
    assert stream.closed


async def test_a_held_stream_outlives_a_change_that_keeps_its_key_and_ends_on_revocation(pool, key):
    checker = tokens(pool)
    stream = Forever()
    held = checker.held("app_a", key.token("u"), stream.items())
    assert await anext(held) == "first"
    waiting = asyncio.ensure_future(anext(held))
    checker.invalidate("app_a")  # e.g. another key added
    await asyncio.sleep(0.1)
    assert not waiting.done()
    pool.revoke("k1")
    checker.invalidate("app_a")
    assert await reason(asyncio.wait_for(waiting, 2)) == "USER_TOKEN_KEY_REVOKED"
    assert stream.closed


async def test_a_held_stream_closed_by_its_client_closes_the_handlers(pool, key):
    checker = tokens(pool)
    stream = Forever()
    held = checker.held("app_a", key.token("u"), stream.items())
    assert await anext(held) == "first"
    waiting = asyncio.ensure_future(anext(held))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await held.aclose()
    assert stream.closed
