"""Survey answers as ListSurveyAnswers pages them: each report (one message's answers)
split into one record per question, and a page token that resumes after the last record
handed out. Pure.

Reports are read in (answered time, message id) order, and a token names a position in that
order — a report and the place of an answer within it — so a page never repeats or skips an
answer, whatever is recorded meanwhile after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgelib.pagination import decode_token, encode_token
from nudgelib.protoconv import to_timestamp
from services.delivery.model import SurveyRow


@dataclass(frozen=True)
class Cursor:
    """The first answer of the next page: the `index`-th answer of the report of `message_id`
    answered at `answered_at`."""

    answered_at: datetime
    message_id: str
    index: int


def encode(cursor: Cursor) -> str:
    return encode_token(cursor.answered_at.isoformat(), cursor.message_id, str(cursor.index))


def decode(token: str) -> Cursor:
    """The cursor of a token; ValueError for one this module did not make."""
    at, message_id, index = decode_token(token, 3)
    cursor = Cursor(datetime.fromisoformat(at), message_id, int(index))
    if cursor.answered_at.tzinfo is None or cursor.index < 0:
        raise ValueError("not a page token of this call")
    return cursor


def page(rows: list[SurveyRow], after: Cursor | None, size: int) -> tuple[list[pb.SurveyAnswerRecord], str]:
    """Up to `size` answer records from `rows` (reports in order, the first possibly the one
    `after` points into), and the token of the next page ('' when `rows` hold no more).
    The caller reads at least size + 1 reports, so a page that ends has found its successor."""
    out: list[pb.SurveyAnswerRecord] = []
    for row in rows:
        skip = after.index if after and (row.answered_at, row.message_id) == (after.answered_at, after.message_id) else 0
        answers = pb.ReportInteractionRequest.FromString(row.answers).answers
        for index in range(skip, len(answers)):
            if len(out) == size:
                return out, encode(Cursor(row.answered_at, row.message_id, index))
            a = answers[index]
            out.append(pb.SurveyAnswerRecord(
                message_id=row.message_id, user_id=row.user_id, variant_id=row.variant_id,
                question_id=a.question_id, choices=a.choices, rating=a.rating, text=a.text,
                answer_time=to_timestamp(row.answered_at)))
    return out, ""
