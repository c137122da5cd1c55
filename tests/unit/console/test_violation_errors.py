"""A service's field violations placed at a plain form's inputs (console.forms.violation_errors):
by the field, or its first part; a field no input shows is a problem of the whole form."""

from __future__ import annotations

from console.forms import violation_errors

INPUTS = {"label": "api_label", "scopes": "api_scopes"}


def test_each_violation_is_at_its_input_or_the_forms():
    errors = violation_errors([("label", "is required"), ("scopes[1]", "'root': not a scope"),
                               ("scopes", "public is a scope of its own"), ("request_id", "is not a UUID"),
                               ("", "bad request")], INPUTS)
    assert errors.inputs == {"api_label": ["is required"],
                             "api_scopes": ["'root': not a scope", "public is a scope of its own"]}
    assert errors.general == ["request_id: is not a UUID", "bad request"]
    assert errors


def test_no_violation_is_no_error():
    assert not violation_errors([], INPUTS)
