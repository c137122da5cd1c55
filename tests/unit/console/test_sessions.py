"""The console's session store: idle expiry (sliding), a lifetime from sign-in, logout, a
bound on sessions, and each ended session handed back once so its channels are closed."""

from __future__ import annotations

from console.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_used_and_ends_after_idle_time_or_its_lifetime():
    clock = Clock()
    store = SessionStore(idle=60, lifetime=300, clock=clock)
    s = store.create(client="c1")
    assert s.id != s.csrf and len(s.id) >= 40
    for _ in range(4):  # a request every 50 s keeps it alive...
        clock.now += 50
        assert store.get(s.id) is s
    clock.now += 50
    assert store.get(s.id) is s
    clock.now += 51  # ...past its 300 s lifetime it ends, used or not
    assert store.get(s.id) is None
    assert [e.client for e in store.take_ended()] == ["c1"] and store.take_ended() == []
    idle = store.create(client="c2")
    clock.now += 60
    assert store.get(idle.id) is None


def test_logout_and_the_bound_end_sessions_and_unknown_ids_find_nothing():
    store = SessionStore(idle=60, lifetime=300, clock=Clock(), capacity=2)
    a, b = store.create(client="a"), store.create(client="b")
    assert store.get(None) is None and store.get("nope") is None
    store.get(a.id)  # a is now the most recently used
    store.create(client="c")
    assert store.get(b.id) is None and store.get(a.id) is a
    store.end(a.id)
    assert store.get(a.id) is None
    assert [e.client for e in store.take_ended()] == ["b", "a"]


def test_previews_are_kept_per_session_up_to_a_bound():
    s = SessionStore(idle=60, lifetime=300, clock=Clock()).create(client="c")
    ids = [s.keep_preview(n, limit=3) for n in range(5)]
    assert list(s.previews) == ids[2:] and s.previews[ids[4]] == 4
