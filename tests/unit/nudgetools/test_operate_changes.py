"""What `nudge diff` and `apply` count as a change (nudgetools.operate.changes), and the order
segments are sent in."""

from __future__ import annotations

from nudgetools.files import parse_documents
from nudgetools.operate.changes import UNSET, FieldChange, document_changes, field_changes, segment_order, show

CAMPAIGN = """
kind: Campaign
key: hello
spec:
  name: Hello
  delivery_mode: DELIVERY_MODE_ON_REQUEST
  tags: [a, b]
  variants:
    - id: main
      contents:
        - locale: en
          content: {layout: LAYOUT_BANNER, title: Hi}
"""


def test_one_edited_leaf_is_one_change_named_by_its_path():
    old = {"name": "Hello", "variants": [{"id": "a", "contents": [{"content": {"title": "Hi"}}]}]}
    new = {"name": "Hello", "variants": [{"id": "a", "contents": [{"content": {"title": "Ho"}}]}]}
    assert field_changes(old, new) == [FieldChange("spec.variants[0].contents[0].content.title", "Hi", "Ho")]
    assert field_changes(old, old) == []


def test_added_and_removed_fields_and_items_are_unset_on_one_side():
    old = {"name": "x", "priority": 3, "variants": [{"id": "a"}, {"id": "b"}]}
    new = {"name": "x", "description": "d", "variants": [{"id": "a"}]}
    # In the new document's order, then what only the old one has; a removed item is one change.
    assert field_changes(old, new) == [
        FieldChange("spec.description", UNSET, "d"),
        FieldChange("spec.variants[1]", {"id": "b"}, UNSET),
        FieldChange("spec.priority", 3, UNSET),
    ]


def test_a_list_of_plain_values_is_one_value():
    assert field_changes({"tags": ["a"]}, {"tags": ["a", "b"]}) == [FieldChange("spec.tags", ["a"], ["a", "b"])]
    assert show(["a", "b"]) == "['a', 'b']" and show(UNSET) == "(unset)" and show(True) == "true"


def test_a_campaign_without_a_status_keeps_the_one_it_has():
    [desired] = parse_documents(CAMPAIGN)
    [active] = parse_documents(CAMPAIGN.replace("  name: Hello", "  name: Hello\n  status: CAMPAIGN_STATUS_ACTIVE"))
    assert document_changes(active, desired) == []
    # New, it is created a draft, as CreateCampaign does.
    assert FieldChange("spec.status", UNSET, "CAMPAIGN_STATUS_DRAFT") in document_changes(None, desired)


def _segment(key: str, names: str = "") -> str:
    rule = (f"segment: {{segment_id: {names}}}" if names
            else "event: {name: signup, operator: EVENT_OPERATOR_AT_LEAST, count: 1}")
    return f"kind: Segment\nkey: {key}\nspec:\n  name: {key}\n  rule:\n    {rule}\n"


def test_segments_come_after_the_segments_they_name():
    docs = parse_documents("---\n".join([_segment("c", "b"), _segment("b", "a"), _segment("a"), _segment("d")]))
    ordered, problems = segment_order(docs)
    assert [d.key for d in ordered] == ["a", "b", "c", "d"] and problems == []


def test_segments_naming_each_other_in_a_circle_are_refused():
    docs = parse_documents("---\n".join([_segment("a", "b"), _segment("b", "a")]), "seg.yaml")
    _, problems = segment_order(docs)
    assert [(p.file, p.field, p.message) for p in problems] == [
        ("seg.yaml", "spec.rule", "segments name each other in a circle: a -> b -> a")]
    assert problems[0].line == 5
