"""The campaign form: inputs and the YAML editor put together as one campaign document, read
back from a saved campaign, and every problem (the files' checks, or a service's BadRequest
violations) placed at its input or at its line of the editor."""

from __future__ import annotations

from console.forms import (STARTER, CampaignForm, form_of, parse_form, parse_segment_form, parse_settings_form,
                           place_violations, settings_violation_errors)

INPUTS = {"name": "Spring sale", "key": "spring", "status": "CAMPAIGN_STATUS_ACTIVE", "priority": "7",
          "delivery_mode": "DELIVERY_MODE_TRIGGERED", "start_time": "2026-03-01T09:30", "end_time": "",
          "tags": "promo, spring"}
TRIGGERED = "triggers:\n  - event_name: cart_abandoned\n    delay: 1800s\n" + STARTER


def test_inputs_and_editor_make_one_campaign_and_it_reads_back_the_same():
    doc, errors = parse_form(CampaignForm(INPUTS, TRIGGERED))
    assert not errors
    c = doc.message
    assert (c.name, c.key, c.priority, list(c.tags), c.start_time.ToJsonString()) == (
        "Spring sale", "spring", 7, ["promo", "spring"], "2026-03-01T09:30:00Z")
    assert (c.triggers[0].event_name, c.triggers[0].delay.seconds) == ("cart_abandoned", 1800)
    shown = form_of(doc)
    assert shown.values == {**INPUTS, "end_time": ""}
    again, _ = parse_form(shown)
    assert again.message == doc.message


def test_a_campaign_without_a_key_keeps_none():
    doc, errors = parse_form(CampaignForm({**INPUTS, "key": ""}, TRIGGERED))
    assert not errors and doc.message.key == ""
    assert form_of(doc).values["key"] == ""


def test_problems_are_placed_at_their_inputs_and_editor_lines():
    rest = TRIGGERED.replace("delay: 1800s", "delay: soon").replace("weight: 1", "weight: -1")
    doc, errors = parse_form(CampaignForm({**INPUTS, "priority": "top", "start_time": "tomorrow", "name": ""}, rest))
    assert doc is None
    assert errors.inputs == {"priority": ["must be a whole number"],
                             "start_time": ["must be a date and time, YYYY-MM-DDTHH:MM (UTC)"]}
    lines = {(line, field) for line, field, _ in errors.rest}
    assert lines == {(3, "spec.triggers[0].delay"), (7, "spec.variants[0].weight")}
    broken, errors = parse_form(CampaignForm(INPUTS, "variants: [\n"))
    assert broken is None and errors.rest[0][0] >= 1 and "not valid YAML" in errors.rest[0][2]


def test_a_services_violations_land_at_their_inputs_and_lines():
    form = CampaignForm(INPUTS, TRIGGERED)
    doc, _ = parse_form(form)
    errors = place_violations([("campaign.priority", "must be at most 1000"),
                               ("campaign.variants[0].contents[0].content.title", "too long"),
                               ("campaign.triggers[0].delay", "must be at most 30 days"),
                               ("request_id", "was used for another request")], doc, form)
    assert errors.inputs == {"priority": ["must be at most 1000"]}
    assert errors.rest == [(12, "spec.variants[0].contents[0].content.title", "too long"),
                           (3, "spec.triggers[0].delay", "must be at most 30 days")]
    assert errors.general == ["request_id: was used for another request"]


def test_segment_and_settings_forms_place_their_problems_too():
    doc, errors = parse_segment_form(CampaignForm({"name": "Engaged", "key": "engaged"},
                                                  "event:\n  name: app_open\n  operator: EVENT_OPERATOR_AT_LEAST\n"
                                                  "  count: 3\n  window: 604800s\n"))
    assert not errors and doc.message.rule.event.count == 3 and doc.message.key == "engaged"
    _, errors = parse_segment_form(CampaignForm({"name": "x", "key": "Bad Key"}, "event: {name: a}\n"))
    assert "key" in errors.inputs
    form = CampaignForm({"default_time_zone": "Europe/Paris", "default_locale": ""},
                        "cap_rules:\n  - id: daily\n    max_messages: 3\n    calendar_days: 1\n")
    settings, errors = parse_settings_form(form)
    assert not errors and settings.message.cap_rules[0].max_messages == 3
    placed = settings_violation_errors([("settings.default_time_zone", "not a zone"),
                                        ("settings.cap_rules[0].max_messages", "too many")], settings, form)
    assert placed.inputs == {"default_time_zone": ["not a zone"]}
    assert placed.rest == [(3, "spec.cap_rules[0].max_messages", "too many")]
    _, errors = parse_settings_form(CampaignForm({"default_time_zone": "Europe", "default_locale": ""}, ""))
    assert "default_time_zone" in errors.inputs
