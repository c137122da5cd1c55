"""`AsyncNudge` (grpc.aio) and `Nudge` (blocking): Nudge's public RPCs with the app's key,
a deadline on every call, and retries of the calls that are safe to try twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import Message

from nudge_client import rpcs
from nudge_client.protos import api_keys, decision, delivery, ingestion, segmentation, user_token_keys
from nudge_client.retry import NO_RETRY, RetryPolicy
from nudge_client.status import retry_delay

DEFAULT_TIMEOUT = 10.0

CHANNEL_OPTIONS = [
    # A restarted server is found again within a fraction of a second, not after gRPC's
    # default reconnect backoff of up to two minutes; the client's own retries do the pacing.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def local_targets(host: str = "127.0.0.1") -> dict[str, str]:
    """Each service's address on `host` at the ports `make run` uses (50051–50054)."""
    return {name: f"{host}:{port}" for name, port in rpcs.LOCAL_PORTS.items()}


def _targets(target: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(target, str):
        # One address for all four: a proxy that routes by gRPC service name.
        return {name: target for name in rpcs.SERVICES}
    unknown = set(target) - set(rpcs.SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; expected some of {list(rpcs.SERVICES)}")
    return dict(target)


class _Base:
    def __init__(self, target: str | Mapping[str, str], api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy = RetryPolicy(), credentials: grpc.ChannelCredentials | None = None,
                 options: list[tuple[str, Any]] | None = None) -> None:
        if not api_key:
            raise ValueError("api_key is empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._targets = _targets(target)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout = timeout
        self.retry = retry
        self._credentials = credentials
        self._options = CHANNEL_OPTIONS + list(options or [])
        self._channels: dict[str, Any] = {}  # target -> channel, shared by services on one address
        self._stubs: dict[str, Any] = {}
        self._lock = threading.Lock()  # the blocking client may be shared by threads

    def _stub(self, service: str, name: str = "") -> Any:
        """The stub of gRPC service `name` (default: the service's own) on `service`'s target."""
        stub = self._stubs.get(name or service)
        if stub is not None:
            return stub
        with self._lock:
            return self._new_stub(service, name or service)

    def _new_stub(self, service: str, name: str) -> Any:
        if name not in self._stubs:
            address = self._targets.get(service)
            if address is None:
                raise ValueError(f"no target for {service}: pass it in the targets mapping")
            if address not in self._channels:
                self._channels[address] = self._channel(address)
            self._stubs[name] = rpcs.STUBS[name](self._channels[address])
        return self._stubs[name]

    def _channel(self, address: str) -> Any:
        raise NotImplementedError

    def _policy(self, rpc: rpcs.Rpc, retry: RetryPolicy | None) -> RetryPolicy:
        if rpc.safety is rpcs.Safety.UNSAFE:
            return NO_RETRY
        return retry or self.retry


class AsyncNudge(_Base):
    """Nudge's public RPCs for asyncio code. `target` is one address for every service, or a
    mapping {service: address} (see `local_targets`). `timeout` is each call's default budget
    in seconds, retries and their waits included; every method takes `timeout=` to override it.
    Failures raise `grpc.aio.AioRpcError` (see `nudge_client.status` for its details).

    Use it as `async with AsyncNudge(...) as nudge:`, or call `await nudge.close()`."""

    def _channel(self, address: str) -> grpc.aio.Channel:
        if self._credentials is not None:
            return grpc.aio.secure_channel(address, self._credentials, options=self._options)
        return grpc.aio.insecure_channel(address, options=self._options)

    async def __aenter__(self) -> "AsyncNudge":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

    async def _call(self, rpc: rpcs.Rpc, request: Message | None, fields: dict[str, Any],
                    timeout: float | None, retry: RetryPolicy | None = None) -> Any:
        message = rpcs.prepared(rpc, request, fields)
        policy = self._policy(rpc, retry)
        method = getattr(self._stub(rpc.service, rpc.stub_name), rpc.method)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(message, metadata=self._metadata, timeout=max(deadline - loop.time(), 0.001))
            except grpc.aio.AioRpcError as exc:
                wait = policy.delay(exc.code().name, attempt, retry_delay(exc))
                # A wait that would end past the deadline cannot succeed: fail now, not later.
                if wait is None or loop.time() + wait >= deadline:
                    raise
            await asyncio.sleep(wait)


    async def track_events(self, request: ingestion.TrackEventsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.TrackEventsResponse:
        """TrackEvents (ingestion). Retried; each event stored once by event_id (made when empty)."""
        return await self._call(rpcs.TRACK_EVENTS, request, fields, timeout)

    async def identify(self, request: ingestion.IdentifyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.IdentifyResponse:
        """Identify (ingestion). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.IDENTIFY, request, fields, timeout)

    async def delete_user(self, request: ingestion.DeleteUserRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.DeleteUserResponse:
        """DeleteUser (ingestion). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.DELETE_USER, request, fields, timeout)

    async def create_campaign(self, request: decision.CreateCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.CreateCampaignResponse:
        """CreateCampaign (decision). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.CREATE_CAMPAIGN, request, fields, timeout)

    async def update_campaign(self, request: decision.UpdateCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.UpdateCampaignResponse:
        """UpdateCampaign (decision). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.UPDATE_CAMPAIGN, request, fields, timeout)

    async def get_campaign(self, request: decision.GetCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.GetCampaignResponse:
        """GetCampaign (decision). Read; retried."""
        return await self._call(rpcs.GET_CAMPAIGN, request, fields, timeout)

    async def list_campaigns(self, request: decision.ListCampaignsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ListCampaignsResponse:
        """ListCampaigns (decision). Read; retried."""
        return await self._call(rpcs.LIST_CAMPAIGNS, request, fields, timeout)

    async def set_campaign_status(self, request: decision.SetCampaignStatusRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.SetCampaignStatusResponse:
        """SetCampaignStatus (decision). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.SET_CAMPAIGN_STATUS, request, fields, timeout)

    async def explain_decision(self, request: decision.ExplainDecisionRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ExplainDecisionResponse:
        """ExplainDecision (decision). Read; retried."""
        return await self._call(rpcs.EXPLAIN_DECISION, request, fields, timeout)

    async def get_app_settings(self, request: decision.GetAppSettingsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.GetAppSettingsResponse:
        """GetAppSettings (decision). Read; retried."""
        return await self._call(rpcs.GET_APP_SETTINGS, request, fields, timeout)

    async def update_app_settings(self, request: decision.UpdateAppSettingsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.UpdateAppSettingsResponse:
        """UpdateAppSettings (decision). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.UPDATE_APP_SETTINGS, request, fields, timeout)

    async def list_pending_sends(self, request: decision.ListPendingSendsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ListPendingSendsResponse:
        """ListPendingSends (decision). Read; retried."""
        return await self._call(rpcs.LIST_PENDING_SENDS, request, fields, timeout)

    async def preview_message(self, request: decision.PreviewMessageRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.PreviewMessageResponse:
        """PreviewMessage (decision): a campaign's message rendered for a user id or sample attributes,
        template errors listed per field; nothing is sent or counted. Read; retried."""
        return await self._call(rpcs.PREVIEW_MESSAGE, request, fields, timeout)

    async def send_test_message(self, request: decision.SendTestMessageRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.SendTestMessageResponse:
        """SendTestMessage (decision): the message into one user's inbox now, counted nowhere.
        Retried under one request_id (made when empty)."""
        return await self._call(rpcs.SEND_TEST_MESSAGE, request, fields, timeout)

    async def create_api_key(self, request: api_keys.CreateApiKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.CreateApiKeyResponse:
        """CreateApiKey (decision's ApiKeyService): a new key of the caller's app; its `secret` is in
        this response only. Never retried: a repeat would issue a second key."""
        return await self._call(rpcs.CREATE_API_KEY, request, fields, timeout)

    async def list_api_keys(self, request: api_keys.ListApiKeysRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.ListApiKeysResponse:
        """ListApiKeys (decision's ApiKeyService): the app's keys, oldest first, no secrets. Read; retried."""
        return await self._call(rpcs.LIST_API_KEYS, request, fields, timeout)

    async def revoke_api_key(self, request: api_keys.RevokeApiKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.RevokeApiKeyResponse:
        """RevokeApiKey (decision's ApiKeyService): refused by every service within about a second;
        the app's last admin key is FAILED_PRECONDITION. Retried (a repeat changes nothing)."""
        return await self._call(rpcs.REVOKE_API_KEY, request, fields, timeout)

    async def add_user_token_key(self, request: user_token_keys.AddUserTokenKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.AddUserTokenKeyResponse:
        """AddUserTokenKey (decision's UserTokenKeyService): registers a public key that user tokens
        are signed with. Retried (the same key under the same id is returned unchanged)."""
        return await self._call(rpcs.ADD_USER_TOKEN_KEY, request, fields, timeout)

    async def list_user_token_keys(self, request: user_token_keys.ListUserTokenKeysRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.ListUserTokenKeysResponse:
        """ListUserTokenKeys (decision's UserTokenKeyService): the app's keys, oldest first. Read; retried."""
        return await self._call(rpcs.LIST_USER_TOKEN_KEYS, request, fields, timeout)

    async def revoke_user_token_key(self, request: user_token_keys.RevokeUserTokenKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.RevokeUserTokenKeyResponse:
        """RevokeUserTokenKey (decision's UserTokenKeyService): tokens it signed are refused from then on.
        Retried (a repeat changes nothing)."""
        return await self._call(rpcs.REVOKE_USER_TOKEN_KEY, request, fields, timeout)

    async def create_segment(self, request: segmentation.CreateSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.CreateSegmentResponse:
        """CreateSegment (segmentation). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.CREATE_SEGMENT, request, fields, timeout)

    async def update_segment(self, request: segmentation.UpdateSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.UpdateSegmentResponse:
        """UpdateSegment (segmentation). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.UPDATE_SEGMENT, request, fields, timeout)

    async def get_segment(self, request: segmentation.GetSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.GetSegmentResponse:
        """GetSegment (segmentation). Read; retried."""
        return await self._call(rpcs.GET_SEGMENT, request, fields, timeout)

    async def list_segments(self, request: segmentation.ListSegmentsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.ListSegmentsResponse:
        """ListSegments (segmentation). Read; retried."""
        return await self._call(rpcs.LIST_SEGMENTS, request, fields, timeout)

    async def delete_segment(self, request: segmentation.DeleteSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.DeleteSegmentResponse:
        """DeleteSegment (segmentation). Retried under one request_id (made when empty)."""
        return await self._call(rpcs.DELETE_SEGMENT, request, fields, timeout)

    async def estimate_audience(self, request: segmentation.EstimateAudienceRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.EstimateAudienceResponse:
        """EstimateAudience (segmentation). Read; retried."""
        return await self._call(rpcs.ESTIMATE_AUDIENCE, request, fields, timeout)

    async def list_segment_members(self, request: segmentation.ListSegmentMembersRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.ListSegmentMembersResponse:
        """ListSegmentMembers (segmentation). Read; retried."""
        return await self._call(rpcs.LIST_SEGMENT_MEMBERS, request, fields, timeout)

    async def get_user_profile(self, request: segmentation.GetUserProfileRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.GetUserProfileResponse:
        """GetUserProfile (segmentation). Read; retried."""
        return await self._call(rpcs.GET_USER_PROFILE, request, fields, timeout)

    async def fetch_messages(self, request: delivery.FetchMessagesRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.FetchMessagesResponse:
        """FetchMessages (delivery). Never retried: what it returns counts as handed over."""
        return await self._call(rpcs.FETCH_MESSAGES, request, fields, timeout)

    async def report_interaction(self, request: delivery.ReportInteractionRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.ReportInteractionResponse:
        """ReportInteraction (delivery). Retried; the server records it once."""
        return await self._call(rpcs.REPORT_INTERACTION, request, fields, timeout)

    async def get_campaign_stats(self, request: delivery.GetCampaignStatsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.GetCampaignStatsResponse:
        """GetCampaignStats (delivery). Read; retried."""
        return await self._call(rpcs.GET_CAMPAIGN_STATS, request, fields, timeout)

    async def list_survey_answers(self, request: delivery.ListSurveyAnswersRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.ListSurveyAnswersResponse:
        """ListSurveyAnswers (delivery). Read; retried."""
        return await self._call(rpcs.LIST_SURVEY_ANSWERS, request, fields, timeout)

class Nudge(_Base):
    """The blocking counterpart of `AsyncNudge`: the same methods, arguments, deadlines and
    retries, over gRPC's synchronous channels; failures raise `grpc.RpcError`. Safe to share
    between threads. Use it as `with Nudge(...) as nudge:`, or call `nudge.close()`."""

    def _channel(self, address: str) -> grpc.Channel:
        if self._credentials is not None:
            return grpc.secure_channel(address, self._credentials, options=self._options)
        return grpc.insecure_channel(address, options=self._options)

    def __enter__(self) -> "Nudge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._stubs.clear()

    def _call(self, rpc: rpcs.Rpc, request: Message | None, fields: dict[str, Any],
              timeout: float | None, retry: RetryPolicy | None = None) -> Any:
        message = rpcs.prepared(rpc, request, fields)
        policy = self._policy(rpc, retry)
        method = getattr(self._stub(rpc.service, rpc.stub_name), rpc.method)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(message, metadata=self._metadata, timeout=max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as exc:
                wait = policy.delay(exc.code().name, attempt, retry_delay(exc))  # type: ignore[attr-defined]
                if wait is None or time.monotonic() + wait >= deadline:
                    raise
            time.sleep(wait)


    def track_events(self, request: ingestion.TrackEventsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.TrackEventsResponse:
        """TrackEvents (ingestion). Retried; each event stored once by event_id (made when empty)."""
        return self._call(rpcs.TRACK_EVENTS, request, fields, timeout)

    def identify(self, request: ingestion.IdentifyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.IdentifyResponse:
        """Identify (ingestion). Retried under one request_id (made when empty)."""
        return self._call(rpcs.IDENTIFY, request, fields, timeout)

    def delete_user(self, request: ingestion.DeleteUserRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> ingestion.DeleteUserResponse:
        """DeleteUser (ingestion). Retried under one request_id (made when empty)."""
        return self._call(rpcs.DELETE_USER, request, fields, timeout)

    def create_campaign(self, request: decision.CreateCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.CreateCampaignResponse:
        """CreateCampaign (decision). Retried under one request_id (made when empty)."""
        return self._call(rpcs.CREATE_CAMPAIGN, request, fields, timeout)

    def update_campaign(self, request: decision.UpdateCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.UpdateCampaignResponse:
        """UpdateCampaign (decision). Retried under one request_id (made when empty)."""
        return self._call(rpcs.UPDATE_CAMPAIGN, request, fields, timeout)

    def get_campaign(self, request: decision.GetCampaignRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.GetCampaignResponse:
        """GetCampaign (decision). Read; retried."""
        return self._call(rpcs.GET_CAMPAIGN, request, fields, timeout)

    def list_campaigns(self, request: decision.ListCampaignsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ListCampaignsResponse:
        """ListCampaigns (decision). Read; retried."""
        return self._call(rpcs.LIST_CAMPAIGNS, request, fields, timeout)

    def set_campaign_status(self, request: decision.SetCampaignStatusRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.SetCampaignStatusResponse:
        """SetCampaignStatus (decision). Retried under one request_id (made when empty)."""
        return self._call(rpcs.SET_CAMPAIGN_STATUS, request, fields, timeout)

    def explain_decision(self, request: decision.ExplainDecisionRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ExplainDecisionResponse:
        """ExplainDecision (decision). Read; retried."""
        return self._call(rpcs.EXPLAIN_DECISION, request, fields, timeout)

    def get_app_settings(self, request: decision.GetAppSettingsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.GetAppSettingsResponse:
        """GetAppSettings (decision). Read; retried."""
        return self._call(rpcs.GET_APP_SETTINGS, request, fields, timeout)

    def update_app_settings(self, request: decision.UpdateAppSettingsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.UpdateAppSettingsResponse:
        """UpdateAppSettings (decision). Retried under one request_id (made when empty)."""
        return self._call(rpcs.UPDATE_APP_SETTINGS, request, fields, timeout)

    def list_pending_sends(self, request: decision.ListPendingSendsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.ListPendingSendsResponse:
        """ListPendingSends (decision). Read; retried."""
        return self._call(rpcs.LIST_PENDING_SENDS, request, fields, timeout)

    def preview_message(self, request: decision.PreviewMessageRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.PreviewMessageResponse:
        """PreviewMessage (decision): a campaign's message rendered for a user id or sample attributes,
        template errors listed per field; nothing is sent or counted. Read; retried."""
        return self._call(rpcs.PREVIEW_MESSAGE, request, fields, timeout)

    def send_test_message(self, request: decision.SendTestMessageRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> decision.SendTestMessageResponse:
        """SendTestMessage (decision): the message into one user's inbox now, counted nowhere.
        Retried under one request_id (made when empty)."""
        return self._call(rpcs.SEND_TEST_MESSAGE, request, fields, timeout)

    def create_api_key(self, request: api_keys.CreateApiKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.CreateApiKeyResponse:
        """CreateApiKey (decision's ApiKeyService): a new key of the caller's app; its `secret` is in
        this response only. Never retried: a repeat would issue a second key."""
        return self._call(rpcs.CREATE_API_KEY, request, fields, timeout)

    def list_api_keys(self, request: api_keys.ListApiKeysRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.ListApiKeysResponse:
        """ListApiKeys (decision's ApiKeyService): the app's keys, oldest first, no secrets. Read; retried."""
        return self._call(rpcs.LIST_API_KEYS, request, fields, timeout)

    def revoke_api_key(self, request: api_keys.RevokeApiKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> api_keys.RevokeApiKeyResponse:
        """RevokeApiKey (decision's ApiKeyService): refused by every service within about a second;
        the app's last admin key is FAILED_PRECONDITION. Retried (a repeat changes nothing)."""
        return self._call(rpcs.REVOKE_API_KEY, request, fields, timeout)

    def add_user_token_key(self, request: user_token_keys.AddUserTokenKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.AddUserTokenKeyResponse:
        """AddUserTokenKey (decision's UserTokenKeyService): registers a public key that user tokens
        are signed with. Retried (the same key under the same id is returned unchanged)."""
        return self._call(rpcs.ADD_USER_TOKEN_KEY, request, fields, timeout)

    def list_user_token_keys(self, request: user_token_keys.ListUserTokenKeysRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.ListUserTokenKeysResponse:
        """ListUserTokenKeys (decision's UserTokenKeyService): the app's keys, oldest first. Read; retried."""
        return self._call(rpcs.LIST_USER_TOKEN_KEYS, request, fields, timeout)

    def revoke_user_token_key(self, request: user_token_keys.RevokeUserTokenKeyRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> user_token_keys.RevokeUserTokenKeyResponse:
        """RevokeUserTokenKey (decision's UserTokenKeyService): tokens it signed are refused from then on.
        Retried (a repeat changes nothing)."""
        return self._call(rpcs.REVOKE_USER_TOKEN_KEY, request, fields, timeout)

    def create_segment(self, request: segmentation.CreateSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.CreateSegmentResponse:
        """CreateSegment (segmentation). Retried under one request_id (made when empty)."""
        return self._call(rpcs.CREATE_SEGMENT, request, fields, timeout)

    def update_segment(self, request: segmentation.UpdateSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.UpdateSegmentResponse:
        """UpdateSegment (segmentation). Retried under one request_id (made when empty)."""
        return self._call(rpcs.UPDATE_SEGMENT, request, fields, timeout)

    def get_segment(self, request: segmentation.GetSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.GetSegmentResponse:
        """GetSegment (segmentation). Read; retried."""
        return self._call(rpcs.GET_SEGMENT, request, fields, timeout)

    def list_segments(self, request: segmentation.ListSegmentsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.ListSegmentsResponse:
        """ListSegments (segmentation). Read; retried."""
        return self._call(rpcs.LIST_SEGMENTS, request, fields, timeout)

    def delete_segment(self, request: segmentation.DeleteSegmentRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.DeleteSegmentResponse:
        """DeleteSegment (segmentation). Retried under one request_id (made when empty)."""
        return self._call(rpcs.DELETE_SEGMENT, request, fields, timeout)

    def estimate_audience(self, request: segmentation.EstimateAudienceRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.EstimateAudienceResponse:
        """EstimateAudience (segmentation). Read; retried."""
        return self._call(rpcs.ESTIMATE_AUDIENCE, request, fields, timeout)

    def list_segment_members(self, request: segmentation.ListSegmentMembersRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.ListSegmentMembersResponse:
        """ListSegmentMembers (segmentation). Read; retried."""
        return self._call(rpcs.LIST_SEGMENT_MEMBERS, request, fields, timeout)

    def get_user_profile(self, request: segmentation.GetUserProfileRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> segmentation.GetUserProfileResponse:
        """GetUserProfile (segmentation). Read; retried."""
        return self._call(rpcs.GET_USER_PROFILE, request, fields, timeout)

    def fetch_messages(self, request: delivery.FetchMessagesRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.FetchMessagesResponse:
        """FetchMessages (delivery). Never retried: what it returns counts as handed over."""
        return self._call(rpcs.FETCH_MESSAGES, request, fields, timeout)

    def report_interaction(self, request: delivery.ReportInteractionRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.ReportInteractionResponse:
        """ReportInteraction (delivery). Retried; the server records it once."""
        return self._call(rpcs.REPORT_INTERACTION, request, fields, timeout)

    def get_campaign_stats(self, request: delivery.GetCampaignStatsRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.GetCampaignStatsResponse:
        """GetCampaignStats (delivery). Read; retried."""
        return self._call(rpcs.GET_CAMPAIGN_STATS, request, fields, timeout)

    def list_survey_answers(self, request: delivery.ListSurveyAnswersRequest | None = None, /, *,
            timeout: float | None = None, **fields: Any) -> delivery.ListSurveyAnswersResponse:
        """ListSurveyAnswers (delivery). Read; retried."""
        return self._call(rpcs.LIST_SURVEY_ANSWERS, request, fields, timeout)
