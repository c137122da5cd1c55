"""`nudge simulate`: a user's timeline through the production rules, as the operator reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nudgetools.files import DocumentError, load_documents
from nudgetools.simulate import main, render, simulate
from nudgetools.timeline import TimelineError, parse_timeline

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def nudge(*args: str) -> subprocess.CompletedProcess:
    """The `nudge` command itself, in a process of its own (it configures logging globally)."""
    return subprocess.run([sys.executable, "-m", "nudgetools.cli", *args], capture_output=True, text=True,
                          timeout=60)


def run(capsys, files: list[str], timeline: str) -> str:
    """What `nudge simulate` prints, from its module in this process."""
    code = main([str(EXAMPLES / f) for f in files], str(EXAMPLES / "timelines" / timeline))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def replay(files: list[str], timeline: str) -> str:
    docs = load_documents([EXAMPLES / f for f in files])
    t = parse_timeline(timeline)
    return render(simulate(docs, t), t, docs)


def test_a_cart_abandoned_at_22_30_is_held_to_09_00():
    done = nudge("simulate", "-f", str(EXAMPLES / "abandoned-cart.yaml"),
                 "--timeline", str(EXAMPLES / "timelines" / "abandoned-cart-late-night.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "user ada, time zone Europe/Paris, delivery by stream; until 2026-12-03T22:30:00+01:00",
        '2026-12-01T22:30:00+01:00  event cart_abandoned {"cart_value": 150}',
        "2026-12-01T22:30:00+01:00    abandoned-cart: triggered: send due at 2026-12-01T23:00:00+01:00"
        " (after its 30m delay)",
        "2026-12-01T23:00:00+01:00    abandoned-cart: held: outside the send window until"
        " 2026-12-02T09:00:00+01:00 [OUTSIDE_WINDOW]",
        "2026-12-02T09:00:00+01:00    abandoned-cart: released: to the inbox (variant reminder)",
        '2026-12-02T09:00:00+01:00    abandoned-cart: shown: pushed on the stream (variant reminder):'
        ' "You left something behind"',
        "received 1 message: abandoned-cart at 2026-12-02T09:00:00+01:00",
    ]


def test_a_purchase_within_30_minutes_cancels_the_send(capsys):
    out = run(capsys, ["abandoned-cart.yaml"], "abandoned-cart-purchase.yaml")
    assert out.splitlines()[3:] == [
        "2026-12-01T14:20:00+01:00  event purchase",
        "2026-12-01T14:20:00+01:00    abandoned-cart: cancelled: the send triggered at 2026-12-01T14:00:00+01:00"
        " is cancelled by exception event purchase [EXCEPTION_EVENT]",
        '2026-12-01T15:20:00+01:00  event cart_abandoned {"cart_value": 80}',
        "2026-12-01T15:20:00+01:00    abandoned-cart: not-triggered: the event's properties do not pass the"
        " trigger's filters [TRIGGER_FILTERS]",
        "received 0 messages",
    ]


def test_a_purchase_after_the_send_cancels_nothing():
    out = replay(["abandoned-cart.yaml"], """
user: {id: u, time_zone: Europe/Paris}
steps:
  - {at: "2026-12-01T14:00:00", event: cart_abandoned, properties: {cart_value: 101}}
  - {after: 31m, event: purchase}
""")
    assert "cancelled" not in out
    assert "2026-12-01T14:30:00+01:00    abandoned-cart: shown" in out


def test_the_fourth_message_of_a_day_waits_for_midnight_and_the_high_importance_one_does_not(capsys):
    out = run(capsys, ["app-caps.yaml"], "app-caps.yaml")
    assert ("2026-12-01T10:30:00-05:00    level-up: held: capped by 3-per-day until 2026-12-02T00:00:00-05:00"
            " [CAPPED]") in out
    assert '2026-12-01T10:40:00-05:00    security-alert: shown: pushed on the stream (variant main): "New sign-in"' in out
    assert '2026-12-02T00:00:00-05:00    level-up: shown: pushed on the stream (variant main): "Level 4 done!"' in out
    assert out.count("level-up: shown") == 4 and out.count("held") == 1


def test_an_audience_miss_is_dropped_and_the_tour_steps_chain_on_clicks(capsys):
    out = run(capsys, ["onboarding-tour.yaml"], "onboarding-tour.yaml")
    assert ("2026-12-01T09:00:00+01:00    tour-step-1: dropped: in none of the included segments [NOT_IN_AUDIENCE]"
            in out)
    assert "2026-12-01T10:00:00+01:00    new-users: segment: enters segment" in out
    assert out.splitlines()[-1] == ("received 3 messages: tour-step-1 at 2026-12-01T10:01:00+01:00, tour-step-2 at "
                                    "2026-12-01T10:01:30+01:00, tour-step-3 at 2026-12-01T10:01:50+01:00")


def test_win_back_waits_in_the_inbox_for_the_user_to_return(capsys):
    out = run(capsys, ["win-back.yaml"], "win-back.yaml")
    assert "2026-12-01T20:00:00+09:00    inactive-30-days: segment: enters segment" in out
    assert "2026-12-01T20:00:00+09:00    win-back: released: to the inbox (variant main)" in out
    assert '2026-12-05T08:00:05+09:00    win-back: shown: shown on pull (variant main): "We missed you, friend"' in out


def test_nps_after_seven_days_in_a_row(capsys):
    out = run(capsys, ["nps-survey.yaml"], "nps-survey.yaml")
    assert "2026-12-07T08:00:00+00:00    active-7-days-in-a-row: segment: enters segment" in out
    assert "received 1 message: nps-survey at 2026-12-07T08:00:00+00:00" in out


def test_an_ab_test_says_why_the_offer_is_not_shown(capsys):
    out = run(capsys, ["ab-test.yaml"], "ab-test.yaml")
    assert "2026-12-01T12:00:00+00:00    premium-offer: not-shown: not shown on screen 'settings' [SCREEN]" in out
    assert "2026-12-01T13:01:00+00:00    premium-offer: not-shown: capped by lifetime [CAPPED]" in out
    assert out.count("premium-offer: shown") == 1


def test_a_control_group_user_gets_nothing_and_is_told_so():
    # With the control group at nearly all the weight, every user is in it.
    docs = load_documents([EXAMPLES / "ab-test.yaml"])
    offer = docs[0].message
    offer.control_weight = 1_000_000
    t = parse_timeline("user: {id: u}\nsteps: [{at: '2026-12-01T12:00:00Z', pull: {screen: home}}]\n")
    out = render(simulate(docs, t), t, docs)
    assert ("2026-12-01T12:00:00+00:00    premium-offer: control: the user is in the control group: nothing is shown"
            " [CONTROL_GROUP]") in out
    assert out.endswith("received 0 messages\n")


def test_a_campaign_whose_segments_are_not_given_is_refused():
    docs = load_documents([EXAMPLES / "onboarding-tour.yaml"])[1:]  # without the segment
    with pytest.raises(DocumentError) as caught:
        simulate(docs, parse_timeline("steps: [{at: '2026-12-01T12:00:00Z', event: x}]"))
    assert "onboarding-tour.yaml:25: spec.audience.include_segment_ids[0]: names segment 'new-users'" in str(caught.value)


@pytest.mark.parametrize("text, expected", [
    ("user: {id: u, time_zone: Mars/Olympus}\nsteps: [{at: '2026-12-01T12:00:00Z', event: x}]\n",
     "t.yaml:1: user.time_zone: unknown IANA time zone 'Mars/Olympus'"),
    ("steps:\n  - at: 2026-12-01T12:00:00Z\n    event: x\n  - after: soon\n    event: y\n",
     "t.yaml:4: steps[1].after: must be a duration such as 20m, 1h30m, 2d or 45s"),
    ("steps:\n  - at: 2026-12-01T12:00:00Z\n    event: x\n    pull: {}\n",
     "t.yaml:2: steps[0]: needs exactly one of event, pull or attributes"),
    ("steps:\n  - at: 2026-12-02T12:00:00Z\n    event: x\n  - at: 2026-12-01T12:00:00Z\n    event: y\n",
     "t.yaml:4: steps[1].at: is before the previous step: steps are in time order"),
    ("steps: [{at: '2026-12-01T12:00:00Z', pull: {platform: PLATFORM_PALM}}]\n",
     "t.yaml:1: steps[0].pull.platform: must be one of PLATFORM_UNSPECIFIED, PLATFORM_IOS, PLATFORM_ANDROID,"
     " PLATFORM_WEB"),
])
def test_a_bad_timeline_names_file_line_and_field(text, expected):
    with pytest.raises(TimelineError) as caught:
        parse_timeline(text, "t.yaml")
    assert [str(p) for p in caught.value.problems] == [expected]


def test_a_bad_file_exits_2_naming_it(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text((EXAMPLES / "abandoned-cart.yaml").read_text().replace("delay: 1800s", "delay: 30m"))
    done = nudge("simulate", "-f", str(bad), "--timeline", str(EXAMPLES / "timelines" / "abandoned-cart-purchase.yaml"))
    assert done.returncode == 2 and done.stdout == ""
    assert f"{bad}:20: spec.triggers[0].delay: '30m' must be a duration in seconds" in done.stderr


def test_profile_steps_change_segments_and_local_times_follow_the_user():
    out = replay(["onboarding-tour.yaml"], """
user: {id: u}
steps:
  - {at: "2026-12-01T08:00:00", event: signup}
  - {after: 1h, attributes: {plan: pro, age: 41, beta: true}, time_zone: Asia/Kolkata}
  - {after: 1m, event: screen_view, properties: {screen: home}}
""")
    assert "2026-12-01T08:00:00+00:00    new-users: segment: enters segment" in out
    assert '2026-12-01T09:00:00+00:00  profile plan="pro", age=41, beta=true, time_zone=Asia/Kolkata' in out
    assert "2026-12-01T09:01:00+00:00    tour-step-1: shown" in out


def test_a_segment_counting_filtered_events_sees_the_timeline_s_events(tmp_path):
    (tmp_path / "s.yaml").write_text("""\
kind: Segment
key: big-buyers
spec:
  name: Big buyers
  rule:
    event:
      name: purchase
      operator: EVENT_OPERATOR_AT_LEAST
      count: 2
      property_filters: [{name: amount, operator: PROPERTY_OPERATOR_GREATER_OR_EQUAL, value: 50}]
""")
    docs = load_documents([tmp_path])
    t = parse_timeline("""
steps:
  - {at: "2026-12-01T10:00:00Z", event: purchase, properties: {amount: 80}}
  - {after: 1h, event: purchase, properties: {amount: 20}}
  - {after: 1h, event: purchase, properties: {amount: 50}}
""")
    out = render(simulate(docs, t), t, docs)
    assert "big-buyers" not in out.split("amount\": 50")[0]
    assert "2026-12-01T12:00:00+00:00    big-buyers: segment: enters segment" in out
