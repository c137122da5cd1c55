"""`nudge apply`, `diff`, `export` and the operator commands, run as a user runs them (a
subprocess, the admin key in NUDGE_ADMIN_KEY, --target naming each service) against the four
real services."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nudge_client import AsyncNudge
from nudge_client.protos import decision, delivery
from nudgetools import demo
from nudgetools.files import load_documents
from tests.conftest import eventually
from tests.helpers import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def targets(stack) -> str:
    return ",".join(f"{name}={stack.target(name)}" for name in ("ingestion", "segmentation", "decision", "delivery"))


async def nudge(stack, app, *args: str, target: str | None = None) -> Result:
    """The CLI in its own process (cli.main configures process-wide logging), without
    blocking this loop, where the services run."""
    env = {**os.environ, "NUDGE_ADMIN_KEY": app.keys["admin"], "NUDGE_TARGET": target or targets(stack)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "nudgetools.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return Result(proc.returncode, out.decode(), err.decode())


def admin(stack, app) -> AsyncNudge:
    return AsyncNudge({n: stack.target(n) for n in ("ingestion", "segmentation", "decision", "delivery")},
                      app.keys["admin"])


async def versions(stack, app) -> dict[str, int]:
    """Every campaign's and segment's key and version, as the app holds them."""
    async with admin(stack, app) as c:
        campaigns = (await c.list_campaigns(page_size=100)).campaigns
        segments = (await c.list_segments(page_size=100)).segments
    return {**{f"campaign {x.key or x.id}": x.version for x in campaigns},
            **{f"segment {x.key or x.id}": x.version for x in segments}}


@pytest.fixture
def examples(tmp_path) -> Path:
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("timelines"))
    return folder


async def test_apply_twice_changes_nothing_the_second_time(stack, database_url, examples):
    app = await create_app(database_url)
    docs = load_documents([examples])
    first = await nudge(stack, app, "apply", "-f", str(examples))
    assert first.returncode == 0, first.stderr
    created = [line for line in first.stdout.splitlines() if line.startswith("created ")]
    assert len(created) == len([d for d in docs if d.kind != "AppSettings"]), first.stdout
    assert "updated AppSettings" in first.stdout
    # Segments go first: the campaigns that name them could not be created otherwise.
    assert first.stdout.index("created Segment new-users") < first.stdout.index("created Campaign tour-step-1")
    before = await versions(stack, app)
    assert set(before) == {f"{d.kind.lower()} {d.key}" for d in docs if d.key}

    second = await nudge(stack, app, "apply", "-f", str(examples))
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert f"0 created, 0 updated, {len(docs)} unchanged" in second.stderr
    assert await versions(stack, app) == before  # nothing was saved again

    diff = await nudge(stack, app, "diff", "--exit-code", "-f", str(examples))
    assert (diff.returncode, diff.stdout) == (0, "")


async def test_diff_shows_exactly_the_one_edited_field(stack, database_url, examples):
    app = await create_app(database_url)
    assert (await nudge(stack, app, "apply", "-f", str(examples))).returncode == 0
    cart = examples / "abandoned-cart.yaml"
    text = cart.read_text()
    cart.write_text(text.replace("title: You left something behind", "title: Still thinking about it?"))
    line = next(i for i, s in enumerate(cart.read_text().splitlines(), 1) if "Still thinking" in s)

    diff = await nudge(stack, app, "diff", "--exit-code", "-f", str(examples))
    assert diff.returncode == 1, diff.stderr
    assert diff.stdout.splitlines() == [
        f"~ Campaign abandoned-cart  {cart}:6",
        f"    spec.variants[0].contents[0].content.title: 'You left something behind' → 'Still thinking about it?'"
        f"  (line {line})",
    ]
    as_json = json.loads((await nudge(stack, app, "diff", "-o", "json", "-f", str(examples))).stdout)
    changed = [d for d in as_json["documents"] if d["action"] != "unchanged"]
    assert changed == [{"kind": "Campaign", "key": "abandoned-cart", "file": str(cart), "line": 6, "action": "update",
                        "id": changed[0]["id"], "changes": [{
                            "field": "spec.variants[0].contents[0].content.title",
                            "old": "You left something behind", "new": "Still thinking about it?"}]}]

    dry = await nudge(stack, app, "apply", "--dry-run", "-f", str(examples))
    assert dry.returncode == 0 and dry.stdout == diff.stdout
    assert (await versions(stack, app))["campaign abandoned-cart"] == 1  # a dry run changes nothing

    applied = await nudge(stack, app, "apply", "-f", str(examples))
    assert applied.stdout == "updated Campaign abandoned-cart (1 field)\n", applied.stderr
    assert (await versions(stack, app))["campaign abandoned-cart"] == 2
    assert (await nudge(stack, app, "diff", "-f", str(examples))).stdout == ""


async def test_export_then_apply_is_a_no_op(stack, database_url, examples, tmp_path):
    app = await create_app(database_url)
    assert (await nudge(stack, app, "apply", "-f", str(examples))).returncode == 0
    async with admin(stack, app) as c:  # one object without a key, as made before keys existed
        segment = (await c.create_segment(name="Signed up", rule=demo.signup_segment().rule)).segment
        await c.create_campaign(campaign=demo.welcome_campaign(segment.id))
    before = await versions(stack, app)

    exported = tmp_path / "state.yaml"
    result = await nudge(stack, app, "export", "--file", str(exported))
    assert result.returncode == 0, result.stderr
    assert f"segment {segment.id} ('Signed up') has no key: left out" in result.stderr
    assert "campaign" in result.stderr and "('Welcome') has no key: left out" in result.stderr
    # What was written is what the files say, in a form the loader reads back.
    assert sorted(load_documents([exported]), key=repr) == sorted(load_documents([examples]), key=repr)

    again = await nudge(stack, app, "apply", "-f", str(exported))
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert await versions(stack, app) == before


async def test_a_bad_file_fails_before_any_call(stack, database_url, tmp_path):
    app = await create_app(database_url)
    good = tmp_path / "good.yaml"
    shutil.copy(EXAMPLES / "onboarding-tour.yaml", good)
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "abandoned-cart.yaml").read_text().replace("PROPERTY_OPERATOR_GREATER",
                                                                          "PROPERTY_OPERATOR_GREATR"))
    line = next(i for i, s in enumerate(bad.read_text().splitlines(), 1) if "GREATR" in s)
    for command in ("apply", "diff"):
        result = await nudge(stack, app, command, "-f", str(good), "-f", str(bad))
        assert result.returncode == 2, result
        assert result.stderr == (f"nudge {command}: bad input:\n{bad}:{line}: spec.triggers[0].property_filters[0]"
                                 ".operator: 'PROPERTY_OPERATOR_GREATR' is not a value here (did you mean "
                                 "PROPERTY_OPERATOR_GREATER?)\n")
    assert await versions(stack, app) == {}  # not even the good file's segment and campaigns
    # With nothing listening at the target, the answer is the same: no connection was tried.
    nowhere = await nudge(stack, app, "apply", "-f", str(bad), target="127.0.0.1:9")
    assert nowhere.returncode == 2 and "bad input" in nowhere.stderr and "UNAVAILABLE" not in nowhere.stderr


async def test_a_segment_key_nobody_has_is_named_before_anything_is_written(stack, database_url, tmp_path):
    app = await create_app(database_url)
    shutil.copy(EXAMPLES / "onboarding-tour.yaml", tmp_path / "tour.yaml")
    text = (tmp_path / "tour.yaml").read_text()
    (tmp_path / "tour.yaml").write_text(text.replace("include_segment_ids: [new-users]",
                                                     "include_segment_ids: [new-userz]"))
    result = await nudge(stack, app, "apply", "-f", str(tmp_path))
    assert result.returncode == 2
    assert "spec.audience.include_segment_ids[0]: no segment has the key 'new-userz'" in result.stderr
    assert await versions(stack, app) == {}


async def test_the_walk_through_on_a_demo_app(stack, database_url, examples):
    """The README's newcomer walk: the demo app, apply the examples, preview, send an event,
    see the message and report it shown, see the stats, export, with the commands built."""
    app = await create_app(database_url)
    await demo.seed(stack.target("segmentation"), stack.target("decision"), app.keys["admin"])
    applied = await nudge(stack, app, "apply", "-f", str(examples))
    assert applied.returncode == 0, applied.stderr
    listed = json.loads((await nudge(stack, app, "campaigns", "list", "-o", "json")).stdout)
    assert {c["key"] for c in listed} == {d.key for d in load_documents([examples]) if d.kind == "Campaign"} | {"welcome"}
    table = (await nudge(stack, app, "campaigns", "list")).stdout
    assert "security-alert" in table and "Welcome" in table

    preview = await nudge(stack, app, "preview", "abandoned-cart", "--event", '{"cart_value": 150}',
                          "--attr", "first_name=Ada")
    assert preview.returncode == 0, preview.stderr
    assert "Your cart of 150 is waiting, Ada." in preview.stdout

    async with AsyncNudge({n: stack.target(n) for n in ("ingestion", "delivery")}, app.keys["events"]) as events:
        await events.track_events(events=[{"user_id": "ada", "name": "new_device_login",
                                           "properties": {"device": "a Pixel"}}])
    async with AsyncNudge({"delivery": stack.target("delivery")}, app.keys["client"]) as client:
        async def fetched():
            return list((await client.fetch_messages(user_id="ada")).messages)
        [message] = await eventually(fetched, timeout=20)
    assert message.content.title == "New sign-in"
    assert "a Pixel" in message.content.body
    async with AsyncNudge({"delivery": stack.target("delivery")}, app.keys["client"]) as client:
        await client.report_interaction(message_id=message.message_id, user_id="ada",
                                        type=delivery.INTERACTION_TYPE_IMPRESSION)

    stats = json.loads((await nudge(stack, app, "campaigns", "stats", "security-alert", "--days", "1",
                                    "-o", "json")).stdout)
    [main] = stats["variants"]
    assert (main["variant_id"], int(main["sent"]), int(main["delivered"]), int(main["impressions"])) == (
        "main", 1, 1, 1)
    [today] = stats["days"]
    assert int(today["variants"][0]["sent"]) == 1
    shown = await nudge(stack, app, "campaigns", "stats", "security-alert")
    assert "main" in shown.stdout and "sent" in shown.stdout

    explained = await nudge(stack, app, "users", "explain", "ada")
    assert explained.returncode == 0 and "New sign-in to your account" in explained.stdout
    test = await nudge(stack, app, "send-test", "level-up", "--user", "bob", "--event", '{"level": 3}', "-o", "json")
    assert test.returncode == 0, test.stderr
    assert json.loads(test.stdout)["content"]["title"] == "Level 3 done!"
    paused = await nudge(stack, app, "campaigns", "pause", "level-up")
    assert paused.stdout == "campaign level-up (Level completed) is paused\n"

    # The demo's own segment and campaign have keys: the export holds everything, and applies
    # back as it is.
    exported = await nudge(stack, app, "export")
    assert exported.returncode == 0 and "left out" not in exported.stderr, exported.stderr
    assert "key: welcome" in exported.stdout and "key: signed-up" in exported.stdout
    (examples.parent / "state.yaml").write_text(exported.stdout)
    again = await nudge(stack, app, "apply", "-f", str(examples.parent / "state.yaml"))
    assert again.returncode == 0 and again.stdout == "", again.stderr


async def test_apply_that_meets_a_concurrent_save_reads_again_and_wins(stack, database_url, examples):
    """The upsert contract: a Create that finds the key taken (ALREADY_EXISTS) or an Update
    that finds a newer version (ABORTED) is read again and sent against what is there now."""
    from nudgetools.operate.files import execute, make_plan

    app = await create_app(database_url)
    assert (await nudge(stack, app, "apply", "-f", str(examples / "abandoned-cart.yaml"))).returncode == 0
    async with admin(stack, app) as c:
        plan = await make_plan(c, load_documents([examples / "abandoned-cart.yaml", examples / "app-caps.yaml"]))
        assert [i.action for i in plan.items if i.doc.kind == "Campaign"] == ["unchanged", "create", "create"]
        # Meanwhile, someone else saves abandoned-cart and creates security-alert by hand.
        other = (await c.get_campaign(key="abandoned-cart")).campaign
        other.priority = 99
        await c.update_campaign(campaign=other)
        [alert] = [i.doc for i in plan.items if i.doc.key == "security-alert"]
        mine = decision.Campaign()
        mine.CopyFrom(alert.message)
        mine.name = "Someone else's"
        await c.create_campaign(campaign=mine)
        plan.items = [i for i in plan.items if i.doc.key != "abandoned-cart"] + [
            i for i in plan.items if i.doc.key == "abandoned-cart"]
        for i in plan.items:  # as if abandoned-cart had been edited in the file
            if i.doc.key == "abandoned-cart":
                i.current_version, i.changes = 1, ("edited",)
        await execute(c, plan)
        cart = (await c.get_campaign(key="abandoned-cart")).campaign
        alert_now = (await c.get_campaign(key="security-alert")).campaign
    assert (cart.version, cart.priority) == (3, 10)  # the file's priority, saved over the other
    assert (alert_now.version, alert_now.name) == (2, "New sign-in to your account")
