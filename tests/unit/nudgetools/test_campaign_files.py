"""Campaign files (nudgetools.files): the examples, the round trip through YAML, and bad
documents failing with file, line and field before anything is sent."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from google.protobuf import json_format

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.timezones import is_valid_time_zone
from nudgetools.files import (
    Document,
    DocumentError,
    document_data,
    document_schema,
    dump_documents,
    from_message,
    load_documents,
    parse_documents,
    segment_references,
    spec_schema,
    with_segment_ids,
)
from services.decision.validation import campaign_violations, settings_violations
from services.segmentation.rule_validation import reference_problems, validate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def examples() -> list[Document]:
    return load_documents([EXAMPLES])


def test_one_example_file_per_seed_use_case(examples):
    by_file = {}
    for d in examples:
        by_file.setdefault(Path(d.origin.file).name, []).append((d.kind, d.key))
    assert by_file == {
        "ab-test.yaml": [("Campaign", "premium-offer")],
        "abandoned-cart.yaml": [("Campaign", "abandoned-cart")],
        "app-caps.yaml": [("AppSettings", ""), ("Campaign", "security-alert"), ("Campaign", "level-up")],
        "nps-survey.yaml": [("Segment", "active-7-days-in-a-row"), ("Campaign", "nps-survey")],
        "onboarding-tour.yaml": [("Segment", "new-users"), ("Campaign", "tour-step-1"), ("Campaign", "tour-step-2"),
                                 ("Campaign", "tour-step-3")],
        "win-back.yaml": [("Segment", "inactive-30-days"), ("Campaign", "win-back")],
    }


def test_every_example_passes_the_services_own_validation(examples):
    segments = {d.key: d.message.rule for d in examples if d.kind == "Segment"}
    for d in examples:
        if d.kind == "Campaign":
            assert campaign_violations(d.message) == [], d.key
            # Segment references are keys of segments given in the examples.
            assert all(r.key in segments for r in segment_references(d)), d.key
        elif d.kind == "Segment":
            assert validate(d.message.rule) == [], d.key
            assert reference_problems(d.message.rule, d.key, segments) == [], d.key
        else:
            assert settings_violations(d.message, is_valid_time_zone) == []


def test_the_examples_say_what_the_issue_asks(examples):
    c = {d.key: d.message for d in examples if d.kind == "Campaign"}
    cart = c["abandoned-cart"]
    trigger = cart.triggers[0]
    assert (trigger.event_name, trigger.delay.seconds, [x.event_name for x in trigger.exception_events]) == (
        "cart_abandoned", 1800, ["purchase"])
    f = trigger.property_filters[0]
    assert (f.name, f.operator, f.value.number_value) == ("cart_value", common_pb2.PROPERTY_OPERATOR_GREATER, 100)
    assert (cart.send_window.start_minute, cart.send_window.end_minute) == (9 * 60, 21 * 60)
    # The tour's steps chain on the previous step's Next button.
    assert [s.triggers[0].property_filters[0].value.string_value for s in (c["tour-step-2"], c["tour-step-3"])] == [
        c["tour-step-1"].variants[0].contents[0].content.buttons[0].id,
        c["tour-step-2"].variants[0].contents[0].content.buttons[0].id]
    assert c["nps-survey"].triggers[0].segment_entered_id == "active-7-days-in-a-row"
    assert c["win-back"].triggers[0].segment_entered_id == "inactive-30-days"
    settings = next(d.message for d in examples if d.kind == "AppSettings")
    assert [(r.id, r.max_messages, r.calendar_days) for r in settings.cap_rules] == [("3-per-day", 3, 1)]
    assert c["security-alert"].caps.bypass_app_caps
    ab = c["premium-offer"]
    assert (len(ab.variants), ab.control_weight > 0, list(ab.conversion.event_names), ab.conversion.deadline.seconds) == (
        2, True, ["subscription_started"], 3 * 86400)


def test_the_examples_come_back_unchanged_through_yaml(examples):
    text = dump_documents(examples)
    assert parse_documents(text) == examples
    # And written again, the same text: export then apply is a no-op.
    assert dump_documents(parse_documents(text)) == text


def _full_campaign() -> pb.Campaign:
    """A campaign setting every field a file may hold, with segment ids as a service returns them."""
    c = pb.Campaign(id="cmp_1", version=3, name="All\nof it", tags=["a", "b"], priority=-4,
                    status=pb.CAMPAIGN_STATUS_PAUSED, delivery_mode=pb.DELIVERY_MODE_TRIGGERED, control_weight=7)
    c.start_time.FromJsonString("2026-12-01T00:00:00Z")
    c.end_time.FromJsonString("2027-01-01T00:00:00.5Z")
    c.create_time.FromJsonString("2026-11-01T00:00:00Z")
    c.audience.include_segment_ids.extend(["seg_a", "seg_b"])
    c.audience.exclude_segment_ids.append("seg_c")
    c.audience.platforms.extend([1, 3])
    c.audience.min_app_version, c.audience.max_app_version = "1.2", "9"
    c.audience.screens.append("home")
    t = c.triggers.add(event_name="cart_abandoned")
    t.delay.FromJsonString("1800s")
    f = t.property_filters.add(name="cart_value", operator=3)
    f.value.number_value = 100.5
    g = t.property_filters.add(name="where", operator=13)
    g.circle.latitude, g.circle.longitude, g.circle.radius_meters = 48.8, 2.3, 200
    x = t.exception_events.add(event_name="purchase")
    x.property_filters.add(name="sku", operator=7).value.list_value.values.add().string_value = "a"
    c.triggers.add(segment_entered_id="seg_a")
    c.send_window.start_minute, c.send_window.end_minute = 1320, 120
    c.send_window.weekdays.extend([5, 6])
    c.send_window.drop_outside_window = True
    v = c.variants.add(id="v1", name="One", weight=3, default_locale="en")
    content = v.contents.add(locale="en").content
    content.layout, content.title, content.body, content.image_url = 5, "T {{ user.x }}", "B", "https://x/y.png"
    content.buttons.add(id="b1", text="Go", action=2, target="app://x")
    content.theme.background_color = "#FFFFFF"
    s = content.slides.add(title="S", body="b", image_url="u")
    s.buttons.add(id="b2", text="n", action=4)
    content.questions.add(id="q", text="?", type=3, max_rating=5, choices=["x"])
    content.anchor.screen, content.anchor.element_id, content.anchor.step = "home", "e", 2
    content.custom_data.update({"deep": {"list": [1, "two", True, None]}})
    c.variants.add(id="v2", weight=1).contents.add(locale="fr").content.layout = 1
    c.message_ttl.FromJsonString("3600.250s")
    c.conversion.event_names.append("purchase")
    c.conversion.deadline.FromJsonString("86400s")
    c.caps.lifetime_max, c.caps.bypass_app_caps = 2, True
    c.caps.reeligibility_interval.FromJsonString("60s")
    return c


def test_a_service_message_becomes_a_document_with_keys_and_back():
    keys = {"seg_a": "cart-abandoners", "seg_b": "vips", "seg_c": "staff"}
    full = _full_campaign()
    full.key = "everything"  # as the service returns it, now that Campaign has a key
    doc = from_message("Campaign", full, "everything", keys)
    assert doc.message.id == "" and not doc.message.HasField("create_time") and doc.message.version == 0
    assert [(r.field, r.key) for r in segment_references(doc)] == [
        ("spec.audience.include_segment_ids[0]", "cart-abandoners"), ("spec.audience.include_segment_ids[1]", "vips"),
        ("spec.audience.exclude_segment_ids[0]", "staff"), ("spec.triggers[1].segment_entered_id", "cart-abandoners")]
    text = dump_documents([doc])
    assert "seg_" not in text and "create_time" not in text and "cmp_1" not in text
    (back,) = parse_documents(text)
    assert back == doc
    # For a call, keys become ids again: the message the service had, less what it assigns.
    expected = full
    for name in ("id", "version", "create_time"):
        expected.ClearField(name)
    assert with_segment_ids(back, {v: k for k, v in keys.items()}) == expected


def test_a_segment_membership_condition_holds_a_key_too():
    rule = seg_pb.Rule()
    group = rule.group
    group.operator = seg_pb.GROUP_OPERATOR_AND
    group.rules.add().segment.segment_id = "seg_9"
    group.rules.add().inactive.duration.FromJsonString("86400s")
    doc = from_message("Segment", seg_pb.Segment(id="seg_1", name="S", rule=rule), "s", {"seg_9": "other"})
    assert [(r.field, r.key) for r in segment_references(doc)] == [("spec.rule.group.rules[0].segment.segment_id", "other")]
    assert parse_documents(dump_documents([doc])) == [doc]


def test_lower_camel_case_names_read_as_the_proto_names():
    snake = parse_documents("kind: AppSettings\nspec:\n  default_time_zone: Europe/Paris\n"
                            "  cap_rules: [{id: d, max_messages: 3, calendar_days: 1}]\n")
    camel = parse_documents("kind: AppSettings\nspec:\n  defaultTimeZone: Europe/Paris\n"
                            "  capRules: [{id: d, maxMessages: 3, calendarDays: 1}]\n")
    assert camel == snake and snake[0].message.cap_rules[0].max_messages == 3


CAMPAIGN = """\
kind: Campaign
key: cart
spec:
  name: Cart
  status: CAMPAIGN_STATUS_ACTIVE
  delivery_mode: DELIVERY_MODE_TRIGGERED
  triggers:
    - event_name: cart_abandoned
      delay: 1800s
  variants:
    - id: main
      contents:
        - locale: en
          content: {layout: LAYOUT_MODAL, title: Hi}
"""


def _problems(text: str, tmp_path, name: str = "bad.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DocumentError) as caught:
        load_documents([path])
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_the_good_document_loads(tmp_path):
    (tmp_path / "ok.yaml").write_text(CAMPAIGN)
    (doc,) = load_documents([tmp_path])
    assert (doc.kind, doc.key, doc.message.triggers[0].delay.seconds) == ("Campaign", "cart", 1800)
    assert doc.origin.line_of("spec.triggers[0].delay") == 9


@pytest.mark.parametrize("old, new, expected", [
    ("      delay: 1800s", "      delay: 30m",
     "bad.yaml:9: spec.triggers[0].delay: '30m' must be a duration in seconds ending in s, e.g. 1800s for 30 minutes"),
    ("      delay: 1800s", "      delay: 1800s\n      dealy: 5s",
     "bad.yaml:10: spec.triggers[0].dealy: is not a field here (did you mean delay?)"),
    ("DELIVERY_MODE_TRIGGERED", "DELIVERY_MODE_TRIGERED",
     "bad.yaml:6: spec.delivery_mode: 'DELIVERY_MODE_TRIGERED' is not a value here (did you mean DELIVERY_MODE_TRIGGERED?)"),
    ("  name: Cart", "  name: Cart\n  id: cmp_1", "bad.yaml:5: spec.id: is assigned by the service and not written in files"),
    ("  name: Cart", "  name: Cart\n  priority: high", "bad.yaml:5: spec.priority: 'high' is not of type 'integer'"),
    ("key: cart", "key: Cart Reminder",
     "bad.yaml:2: key: 'Cart Reminder' must be a key: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit"),
    ("key: cart\n", "", "bad.yaml:1: kind: a Campaign needs a key"),
    ("    - event_name: cart_abandoned", "    - event_name: cart_abandoned\n      segment_entered_id: carts",
     "bad.yaml:9: spec.triggers[0].segment_entered_id: only one of event_name, segment_entered_id may be set"
     " (event_name is)"),
    ("  name: Cart", "  name: Cart\n  audience: {include_segment_ids: [Seg 8F]}",
     "bad.yaml:5: spec.audience.include_segment_ids[0]: 'Seg 8F' must be a key: 1 to 64 of a-z 0-9 . _ -, "
     "starting with a letter or digit"),
    # What only the services' own validation knows, at its line too.
    ("title: Hi", "title: '{{ user.name'",
     "bad.yaml:14: spec.variants[0].contents[0].content.title: template: expected '}}', found end of file"),
    ("      delay: 1800s", "      delay: 40000000s", "bad.yaml:9: spec.triggers[0].delay: must be at most 365 days"),
    ("  name: Cart", "  name: Cart\n  deliveryMode: DELIVERY_MODE_ON_REQUEST",
     "bad.yaml:5: spec.delivery_mode: is given twice (as delivery_mode and deliveryMode)"),
    ("spec:", "spec:\n  key: cart", "bad.yaml:4: spec.key: is written at the document's top level, not in spec"),
    ("kind: Campaign", "kind: Campaign\nmetadata: {}",
     "bad.yaml:2: metadata: is not a document field (kind, key, spec; the message's fields go under spec)"),
    ("  variants:", "  variants: [\n", "bad.yaml:12: not valid YAML: expected the node content, but found '-'"),
])
def test_a_bad_document_names_file_line_and_field(tmp_path, old, new, expected):
    assert old in CAMPAIGN
    assert _problems(CAMPAIGN.replace(old, new, 1), tmp_path) == [expected]


def test_app_settings_have_no_key(tmp_path):
    assert _problems("kind: AppSettings\nkey: main\nspec: {default_locale: en}\n", tmp_path) == [
        "bad.yaml:2: key: AppSettings have no key (there is one per app)"]


def test_every_problem_of_every_file_is_named_at_once(tmp_path):
    (tmp_path / "a.yaml").write_text(CAMPAIGN.replace("1800s", "soon"))
    (tmp_path / "b.yaml").write_text(CAMPAIGN + "---\nkind: Segment\nkey: s\nspec: {name: S}\n"
                                     "---\nkind: AppSettings\nspec: {default_time_zone: Mars/Olympus}\n")
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    with pytest.raises(DocumentError) as caught:
        load_documents([tmp_path])
    assert [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems] == [
        "a.yaml:9: spec.triggers[0].delay: 'soon' must be a duration in seconds ending in s, e.g. 1800s for 30 minutes",
        "b.yaml:18: spec.rule: is required",
        "b.yaml:21: spec.default_time_zone: unknown IANA time zone 'Mars/Olympus'",
        "c.yaml:2: key: Campaign 'cart' is given twice (first at b.yaml:2)",
    ]


def test_a_folder_is_its_yaml_files_in_name_order_without_subfolders(tmp_path):
    (tmp_path / "b.yaml").write_text(CAMPAIGN.replace("key: cart", "key: b"))
    (tmp_path / "a.yml").write_text(CAMPAIGN.replace("key: cart", "key: a"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("not: a document")
    assert [d.key for d in load_documents([tmp_path])] == ["a", "b"]
    with pytest.raises(DocumentError, match="nope.yaml: cannot be read"):
        load_documents([tmp_path / "nope.yaml"])


def test_the_schema_follows_the_message_descriptors():
    # Every field of every message a file holds is in the generated schema, so a field added
    # to a proto is accepted by files after `make protos`, with no schema to edit.
    schema = spec_schema("Campaign")
    defs = schema["$defs"]
    for full_name, descriptor in [(d.full_name, d) for d in (pb.Campaign.DESCRIPTOR, pb.Trigger.DESCRIPTOR,
                                                              pb.Audience.DESCRIPTOR, pb.CampaignCaps.DESCRIPTOR)]:
        assert set(defs[full_name]["properties"]) == set(descriptor.fields_by_name), full_name
    assert defs["nudge.decision.v1.Campaign"]["properties"]["status"] == {"enum": list(pb.CampaignStatus.keys())}
    assert schema["properties"]["id"] is False and schema["properties"]["name"] == {"type": "string"}


def test_the_whole_document_schema_accepts_the_examples_and_refuses_a_bad_one(examples):
    validator = jsonschema.Draft202012Validator(document_schema())
    for d in examples:
        assert list(validator.iter_errors(document_data(d))) == [], d.key
    bad = document_data(examples[0])
    bad["spec"]["priority"] = "high"
    assert [e.message for e in validator.iter_errors(bad)] == ["'high' is not of type 'integer'"]
    keyless = document_data(next(d for d in examples if d.kind == "Campaign"))
    del keyless["key"]
    assert list(validator.iter_errors(keyless))


def test_json_format_reads_what_the_loader_checked(examples):
    # The spec written out is protobuf's JSON mapping: json_format reads it into the same message.
    for d in examples:
        message = type(d.message)()
        json_format.ParseDict(document_data(d)["spec"], message)
        if "key" in message.DESCRIPTOR.fields_by_name:
            message.key = d.key
        assert message == d.message
