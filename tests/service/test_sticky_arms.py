"""Sticky A/B arms when the stored arm is gone, against the real services: a user exposed to
variant B, then B removed, gets another arm by hash (a variant, or the control group); that
arm is persisted in place of the gone one, so a later weight change moves them no more than
it moves anyone else who has seen the campaign, over pulls and over triggered sends. (A
control weight set to 0 keeps those held out: tests/service/test_stats.py.)"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.db import create_pool
from services.decision import store
from services.decision.model import Reservation
from services.decision.variants import CONTROL, assign_variant
from tests.conftest import eventually
from tests.helpers import Clients, create_app, create_campaign, event, fetch_messages, make_campaign, track


def with_variants(c: pb.Campaign, weights: dict[str, int], control: int | None = None) -> pb.Campaign:
    """`c` with its variants (copies of its first) weighted as given, and the control weight
    (`c`'s unless given)."""
    out = pb.Campaign()
    out.CopyFrom(c)
    base = c.variants[0]
    out.ClearField("variants")
    for vid, weight in weights.items():
        v = out.variants.add()
        v.CopyFrom(base)
        v.id, v.weight = vid, weight
    if control is not None:
        out.control_weight = control
    return out


def pick_user(campaign: pb.Campaign, prefix: str, first: str, edited: pb.Campaign,
              then: str | None = None) -> tuple[str, str, dict[str, int]]:
    """A user whose arm by hash is `first` on `campaign`, who then gets another arm X on
    `edited` (the campaign after the edit; X is `then` if given, else a variant), and a
    weighting of the edit's variants under which their hash would give a variant other than
    X: (user, X, those weights)."""
    for i in range(5000):
        user = f"{prefix}-{i}"
        if assign_variant(campaign, user) != first:
            continue
        arm = assign_variant(edited, user)
        wanted = arm == then if then is not None else arm != CONTROL
        if not wanted:
            continue
        other = next(v.id for v in edited.variants if v.id != arm)
        moved = {v.id: (99 if v.id == other else 1) for v in edited.variants}
        if assign_variant(with_variants(edited, moved), user) == other:
            return user, arm, moved
    raise AssertionError("no such user")  # not reached: a good share of users qualify


async def update(api: Clients, app, campaign: pb.Campaign) -> pb.Campaign:
    return (await api.decision.UpdateCampaign(pb.UpdateCampaignRequest(
        campaign=campaign, expected_version=campaign.version), metadata=app.auth("admin"))).campaign


async def variants_seen(api: Clients, app, user: str, pulls: int) -> list[str]:
    """The variant of the campaign's message in each of `pulls` pulls (none: '-')."""
    out = []
    for _ in range(pulls):
        got = await fetch_messages(api, app, user)
        out.append(got[0].variant_id if got else "-")
    return out


async def stored_arm(database_url: str, app_id: str, user: str, campaign_id: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT variant_id FROM decision.variant_assignments WHERE app_id = $1 AND user_id = $2"
            " AND campaign_id = $3", app_id, user, campaign_id)
    finally:
        await conn.close()


class Triggers:
    """Trigger events for one user, one at a time, each followed to where it ends."""

    def __init__(self, api: Clients, app, user: str) -> None:
        self._api, self._app, self._user = api, app, user
        self._sent = 0

    async def _track(self) -> str:
        self._sent += 1
        event_id = f"{self._user}-{self._sent}"
        await self._api.ingestion.TrackEvents(track([event(event_id, self._user, "level_up")]),
                                              metadata=self._app.auth("events"))
        return f"event:{event_id}"

    async def variant(self) -> str:
        """The variant of the message one trigger event puts in the user's inbox."""
        await self._track()
        (got,) = await eventually(lambda: fetch_messages(self._api, self._app, self._user), timeout=20)
        return got.variant_id

    async def settled(self) -> int:
        """The state one trigger event's send settles in (pb.PendingSendState)."""
        cause = await self._track()

        async def state():
            listed = await self._api.decision.ListPendingSends(pb.ListPendingSendsRequest(
                user_id=self._user), metadata=self._app.auth("admin"))
            return next((s.state for s in listed.pending_sends if s.cause == cause
                         and s.state >= pb.PENDING_SEND_STATE_RELEASED), None)

        return await eventually(state, timeout=20)


def triggered_campaign() -> pb.Campaign:
    c = repeatable("Level up", "level_up")
    c.caps.reeligibility_interval.CopyFrom(duration_pb2.Duration(seconds=0))
    return c


def repeatable(name: str, on: str = "") -> pb.Campaign:
    c = make_campaign(name, on)
    c.caps.lifetime_max = 1000  # shown on every pull: each pull asks the arm again
    return c


async def test_a_user_whose_variant_is_removed_keeps_the_new_arm_through_weight_changes(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, with_variants(repeatable("Three ways"), {"A": 1, "B": 1, "C": 1}))
    edited = with_variants(campaign, {"A": 1, "C": 1})
    user, arm, moved = pick_user(campaign, "ab", "B", edited)

    assert await variants_seen(api, app, user, 2) == ["B", "B"]
    # The operator removes B: the user gets the arm their hash gives among A and C.
    edited = await update(api, app, edited)
    assert await variants_seen(api, app, user, 2) == [arm, arm]
    assert await stored_arm(database_url, app.id, user, campaign.id) == arm
    # Traffic moves to the other variant: the user, exposed already, stays.
    await update(api, app, with_variants(edited, moved))
    assert await variants_seen(api, app, user, 4) == [arm] * 4


async def test_triggered_sends_keep_the_arm_that_replaced_a_removed_variant(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, with_variants(triggered_campaign(), {"A": 1, "B": 1, "C": 1}))
    edited = with_variants(campaign, {"A": 1, "C": 1})
    user, arm, moved = pick_user(campaign, "lv", "B", edited)
    triggered = Triggers(api, app, user)

    assert [await triggered.variant() for _ in range(2)] == ["B", "B"]
    edited = await update(api, app, edited)
    assert [await triggered.variant() for _ in range(2)] == [arm, arm]
    assert await stored_arm(database_url, app.id, user, campaign.id) == arm
    await update(api, app, with_variants(edited, moved))
    assert [await triggered.variant() for _ in range(3)] == [arm] * 3


async def test_a_triggered_control_exposure_replaces_a_removed_variant_and_stays(stack, database_url):
    """The releaser records a first control exposure's arm itself (no pull does): in place of
    the removed variant too, so the user stays held out when the weights move."""
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, with_variants(triggered_campaign(), {"A": 1, "B": 1}))
    edited = with_variants(campaign, {"A": 1, "C": 1}, control=1)
    user, _, moved = pick_user(campaign, "held", "B", edited, then=CONTROL)
    triggered = Triggers(api, app, user)

    assert await triggered.variant() == "B"
    # B is removed and a control group added: the user's hash puts them in it.
    edited = await update(api, app, edited)
    assert await triggered.settled() == pb.PENDING_SEND_STATE_CONTROL
    assert await stored_arm(database_url, app.id, user, campaign.id) == CONTROL
    await update(api, app, with_variants(edited, moved))
    assert [await triggered.settled() for _ in range(2)] == [pb.PENDING_SEND_STATE_CONTROL] * 2
    assert await fetch_messages(api, app, user) == []


async def test_a_pull_racing_a_release_for_a_removed_arm_ends_with_the_one_stored(stack, database_url):
    """Two replicas replacing one gone arm at once: the releaser (which takes no user lock)
    records control, and a pull that read the gone arm under the user's lock proposes a
    variant meanwhile. The pull's write waits for the releaser's, keeps the arm it committed
    (live), and hands that back as the user's state: both use one arm from then on."""
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, with_variants(repeatable("Raced"), {"A": 1, "B": 1}))
    edited = with_variants(campaign, {"A": 1, "C": 1}, control=1)
    user, _, _ = pick_user(campaign, "race", "B", edited, then=CONTROL)
    assert await variants_seen(api, app, user, 1) == ["B"]
    await update(api, app, edited)
    pool = await create_pool(database_url, "decision", min_size=2, max_size=2)
    try:
        now = datetime.now(timezone.utc)
        release = await pool.acquire()
        try:
            async with release.transaction():
                await store.assign_arms(release, [(app.id, user, campaign.id, CONTROL)], now)
                proposed = []

                def plan(state):
                    proposed.append(dict(state.arms))
                    return Reservation([], [(campaign.id, "A")]), None

                pull = asyncio.ensure_future(store.reserve_many(pool, [store.Reserve(
                    app.id, user, now, plan, live=lambda _c: {"A", "C", CONTROL})]))
                await eventually(lambda: asyncio.sleep(0, proposed))
                await asyncio.sleep(0.3)
                assert not pull.done()  # waiting for the release's row
            ((_, state),) = await pull
        finally:
            await pool.release(release)
        assert proposed == [{campaign.id: "B"}]  # what the pull saw: the gone arm
        assert state.arms == {campaign.id: CONTROL}
        assert await stored_arm(database_url, app.id, user, campaign.id) == CONTROL
    finally:
        await pool.close()
