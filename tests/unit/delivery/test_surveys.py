"""Survey answers one per question, and page tokens that resume exactly after the last
answer handed out, even inside one report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nudge.delivery.v1 import delivery_service_pb2 as pb
from services.delivery.model import SurveyRow
from services.delivery.surveys import Cursor, decode, encode, page

T0 = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)


def report(message_id: str, minutes: int, *questions: str) -> SurveyRow:
    answers = pb.ReportInteractionRequest(answers=[pb.SurveyAnswer(question_id=q, text=f"{message_id}:{q}")
                                                   for q in questions]).SerializeToString()
    return SurveyRow(message_id, f"user-{message_id}", "A", answers, T0 + timedelta(minutes=minutes))


ROWS = [report("m1", 0, "q1", "q2", "q3"), report("m2", 1, "q1"), report("m3", 2, "q1", "q2")]


def test_pages_split_reports_and_resume_inside_one():
    first, token = page(ROWS, None, 2)
    assert [a.text for a in first] == ["m1:q1", "m1:q2"]
    assert decode(token) == Cursor(T0, "m1", 2)
    second, token = page(ROWS, decode(token), 2)  # the store reads again from m1 (inclusive)
    assert [a.text for a in second] == ["m1:q3", "m2:q1"]
    assert decode(token) == Cursor(T0 + timedelta(minutes=2), "m3", 0)
    third, token = page(ROWS[2:], decode(token), 2)
    assert [a.text for a in third] == ["m3:q1", "m3:q2"] and token == ""
    assert third[0].answer_time.ToDatetime(timezone.utc) == T0 + timedelta(minutes=2)


def test_a_token_round_trips_to_the_microsecond_and_foreign_ones_are_refused():
    cursor = Cursor(T0, "msg_x", 7)
    assert decode(encode(cursor)) == cursor
    for bad in ("not-a-token", encode(Cursor(T0.replace(tzinfo=None), "m", 0)), "", "////"):
        with pytest.raises(ValueError):
            decode(bad)
