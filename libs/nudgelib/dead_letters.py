"""The edges of the failure policy (`nudgelib.isolation`): its settings, whose fault a raised
error is, and the warning and count of each item set aside.

Every loop that forwards items of many apps (the log readers of nudgelib.eventlog,
decision's releaser) uses these, so the policy reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import structlog
from google.protobuf.message import DecodeError

from nudgelib.config import setting
from nudgelib.errors import Unavailable
from nudgelib.isolation import Fault, Policy, fault_of_code
from nudgelib.loops import expected

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FailureSettings:
    """NUDGE_DEAD_LETTER_*: one policy for every service (a `group` of each one's settings)."""

    # Failures of one item on its own (a consumer answering INVALID_ARGUMENT, INTERNAL,
    # UNKNOWN…) before it is set aside as a dead letter. A consumer that is down never counts.
    max_attempts: int = setting("NUDGE_DEAD_LETTER_AFTER_ATTEMPTS", 5, low=1, high=1000)
    # An app whose items failed is held back this long, doubling per failed round, at most
    # the maximum; every other app's items go on meanwhile.
    hold_initial_seconds: float = setting("NUDGE_DEAD_LETTER_RETRY_SECONDS", 0.5, low=0.001, high=600)
    hold_maximum_seconds: float = setting("NUDGE_DEAD_LETTER_MAX_RETRY_SECONDS", 30.0, low=0.001, high=3600)

    def policy(self) -> Policy:
        return Policy(self.max_attempts, self.hold_initial_seconds,
                      max(self.hold_initial_seconds, self.hold_maximum_seconds))


def fault_of(exc: BaseException) -> tuple[Fault, str]:
    """Whose fault a failed send is, and its text. A consumer's status decides (see
    `isolation.DOWN_CODES`); the database or network away is the consumer's side too; an item
    that cannot even be decoded is the item's. Anything else is a bug here: raised again."""
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code().name
        return fault_of_code(code), f"{code}: {exc.details() or ''}"[:2000]
    if isinstance(exc, Unavailable) or expected(exc):
        return Fault.DOWN, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DecodeError):
        return Fault.ITEM, f"DecodeError: {exc}"[:2000]
    raise exc


def warn_dead(dispatcher: str, app_id: str, user_id: str, error: str, **fields) -> None:
    """The one warning per item set aside."""
    log.warning("dead_lettered", dispatcher=dispatcher, app_id=app_id, user_id=user_id, error=error, **fields)
