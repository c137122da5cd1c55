"""The public RPCs the client wraps, and whether each is safe to try twice."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from nudge_client._proto.nudge.decision.v1 import (api_key_service_pb2_grpc, decision_service_pb2_grpc,
                                                    user_token_key_service_pb2_grpc)
from nudge_client._proto.nudge.delivery.v1 import delivery_service_pb2_grpc
from nudge_client._proto.nudge.ingestion.v1 import ingestion_service_pb2_grpc
from nudge_client._proto.nudge.segmentation.v1 import segmentation_service_pb2_grpc
from nudge_client.protos import api_keys, decision, delivery, ingestion, segmentation, user_token_keys

SERVICES = ("ingestion", "segmentation", "decision", "delivery")
STUBS = {
    "ingestion": ingestion_service_pb2_grpc.IngestionServiceStub,
    "segmentation": segmentation_service_pb2_grpc.SegmentationServiceStub,
    "decision": decision_service_pb2_grpc.DecisionServiceStub,
    "delivery": delivery_service_pb2_grpc.DeliveryServiceStub,
    # Hosted by decision beside its own service (Rpc.stub names it).
    "api_keys": api_key_service_pb2_grpc.ApiKeyServiceStub,
    "user_token_keys": user_token_key_service_pb2_grpc.UserTokenKeyServiceStub,
}
# The ports `nudge run` and the compose file give each service.
LOCAL_PORTS = {"ingestion": 50051, "segmentation": 50052, "decision": 50053, "delivery": 50054}


class Safety(enum.Enum):
    READ = "read"              # changes nothing: retried
    REQUEST_ID = "request_id"  # a write the server runs once per request_id: retried, with an id
    EVENT_IDS = "event_ids"    # events stored once per event_id: retried, each event with an id
    IDEMPOTENT = "idempotent"  # a write whose repeat changes nothing by its nature: retried
    UNSAFE = "unsafe"          # a repeat could do it twice: never retried


@dataclass(frozen=True)
class Rpc:
    service: str  # the Nudge service that answers it: whose target the call goes to
    method: str
    request: type[Message]
    safety: Safety
    stub: str = ""  # its gRPC service in STUBS, when not the service's own (ApiKeyService…)

    @property
    def stub_name(self) -> str:
        return self.stub or self.service


def _rpc(service: str, method: str, module: Any, safety: Safety, stub: str = "") -> Rpc:
    return Rpc(service, method, getattr(module, f"{method}Request"), safety, stub)


R, W, E, I = Safety.READ, Safety.REQUEST_ID, Safety.EVENT_IDS, Safety.IDEMPOTENT
TRACK_EVENTS = _rpc("ingestion", "TrackEvents", ingestion, E)
IDENTIFY = _rpc("ingestion", "Identify", ingestion, W)
DELETE_USER = _rpc("ingestion", "DeleteUser", ingestion, W)
CREATE_CAMPAIGN = _rpc("decision", "CreateCampaign", decision, W)
UPDATE_CAMPAIGN = _rpc("decision", "UpdateCampaign", decision, W)
GET_CAMPAIGN = _rpc("decision", "GetCampaign", decision, R)
LIST_CAMPAIGNS = _rpc("decision", "ListCampaigns", decision, R)
SET_CAMPAIGN_STATUS = _rpc("decision", "SetCampaignStatus", decision, W)
EXPLAIN_DECISION = _rpc("decision", "ExplainDecision", decision, R)
GET_APP_SETTINGS = _rpc("decision", "GetAppSettings", decision, R)
UPDATE_APP_SETTINGS = _rpc("decision", "UpdateAppSettings", decision, W)
LIST_PENDING_SENDS = _rpc("decision", "ListPendingSends", decision, R)
PREVIEW_MESSAGE = _rpc("decision", "PreviewMessage", decision, R)
SEND_TEST_MESSAGE = _rpc("decision", "SendTestMessage", decision, W)
# A retry after a lost reply would issue a second key, active, whose secret nobody saw.
CREATE_API_KEY = _rpc("decision", "CreateApiKey", api_keys, Safety.UNSAFE, "api_keys")
LIST_API_KEYS = _rpc("decision", "ListApiKeys", api_keys, R, "api_keys")
# Revoking a revoked key returns it unchanged.
REVOKE_API_KEY = _rpc("decision", "RevokeApiKey", api_keys, I, "api_keys")
# The same key under the same id (or under the id derived from the key) is returned unchanged.
ADD_USER_TOKEN_KEY = _rpc("decision", "AddUserTokenKey", user_token_keys, I, "user_token_keys")
LIST_USER_TOKEN_KEYS = _rpc("decision", "ListUserTokenKeys", user_token_keys, R, "user_token_keys")
# Revoking a revoked key returns it unchanged.
REVOKE_USER_TOKEN_KEY = _rpc("decision", "RevokeUserTokenKey", user_token_keys, I, "user_token_keys")
CREATE_SEGMENT = _rpc("segmentation", "CreateSegment", segmentation, W)
UPDATE_SEGMENT = _rpc("segmentation", "UpdateSegment", segmentation, W)
GET_SEGMENT = _rpc("segmentation", "GetSegment", segmentation, R)
LIST_SEGMENTS = _rpc("segmentation", "ListSegments", segmentation, R)
DELETE_SEGMENT = _rpc("segmentation", "DeleteSegment", segmentation, W)
ESTIMATE_AUDIENCE = _rpc("segmentation", "EstimateAudience", segmentation, R)
LIST_SEGMENT_MEMBERS = _rpc("segmentation", "ListSegmentMembers", segmentation, R)
GET_USER_PROFILE = _rpc("segmentation", "GetUserProfile", segmentation, R)
# Each message FetchMessages returns counts as handed to the user: a retry after a reply that
# was lost on the way would hand the next ones and the first would never be shown.
FETCH_MESSAGES = _rpc("delivery", "FetchMessages", delivery, Safety.UNSAFE)
# Recorded once per (message, kind, button) by the server.
REPORT_INTERACTION = _rpc("delivery", "ReportInteraction", delivery, I)
GET_CAMPAIGN_STATS = _rpc("delivery", "GetCampaignStats", delivery, R)
LIST_SURVEY_ANSWERS = _rpc("delivery", "ListSurveyAnswers", delivery, R)


def new_id() -> str:
    return str(uuid.uuid4())


def prepared(rpc: Rpc, request: Message | None, fields: dict[str, Any]) -> Message:
    """The request to send: `request` or one built from `fields`, and for a write whose
    retries are deduplicated, a copy with a fresh request_id (or event ids) where the caller
    left them empty, so a retry is recognised as the same call. The caller's message is not
    changed."""
    if request is None:
        request = rpc.request(**fields)
    elif fields:
        raise TypeError(f"{rpc.method}: pass a request or its fields, not both")
    elif not isinstance(request, rpc.request):
        raise TypeError(f"{rpc.method} takes a {rpc.request.__name__}, not {type(request).__name__}")
    if rpc.safety is Safety.REQUEST_ID and not request.request_id:  # type: ignore[attr-defined]
        copy = rpc.request()
        copy.CopyFrom(request)
        copy.request_id = new_id()  # type: ignore[attr-defined]
        return copy
    if rpc.safety is Safety.EVENT_IDS and any(not e.event_id for e in request.events):  # type: ignore[attr-defined]
        copy = rpc.request()
        copy.CopyFrom(request)
        for e in copy.events:  # type: ignore[attr-defined]
            if not e.event_id:
                e.event_id = new_id()
        return copy
    return request

