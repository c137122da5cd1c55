"""Wiring of the decision service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from nudge.decision.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    decision_internal_service_pb2,
    decision_internal_service_pb2_grpc,
    decision_service_pb2,
    decision_service_pb2_grpc,
    user_token_key_service_pb2,
    user_token_key_service_pb2_grpc,
)
from nudgelib.accounts import Scope
from nudgelib.interceptor import AccessPolicy
from nudgelib.replay import Replays
from nudgelib.request_checks import INGESTED
from nudgelib.retention import prune_loop
from nudgelib.server import ServiceHost, ServiceSpec
from services.decision.api_key_servicer import ApiKeyServicer
from services.decision.caches import CONTEXTS_CHANNEL, CampaignCatalog, UserContexts, UserStates
from services.decision.decider import Decider
from services.decision.release import Releaser
from services.decision.servicer import DecisionInternalServicer, DecisionServicer
from services.decision.settings import DecisionSettings
from services.decision.user_token_key_servicer import UserTokenKeyServicer
from services.decision.store import CAMPAIGNS_CHANNEL, ERASED_USERS_CHANNEL, REQUEST_RESPONSES, STATES_CHANNEL

POLICY = AccessPolicy({
    name: Scope.ADMIN
    for name in ("CreateCampaign", "UpdateCampaign", "GetCampaign", "ListCampaigns", "SetCampaignStatus",
                 "ExplainDecision", "ListPendingSends", "GetAppSettings", "UpdateAppSettings",
                 "AddUserTokenKey", "ListUserTokenKeys", "RevokeUserTokenKey", "PreviewMessage", "SendTestMessage",
                 "CreateApiKey", "ListApiKeys", "RevokeApiKey")
})


async def wire(host: ServiceHost, settings: DecisionSettings) -> None:
    catalog = CampaignCatalog(host.pool)
    host.listener(CAMPAIGNS_CHANNEL, catalog.invalidate)
    contexts = UserContexts(host.peers["segmentation"], host.clock, settings.context_cache_size,
                            timedelta(seconds=settings.context_ttl_seconds), settings.context_cache_mb << 20)
    host.listener(CONTEXTS_CHANNEL, contexts.on_notify)
    states = UserStates(host.pool, settings.state_cache_size, settings.state_cache_mb << 20)
    decider = Decider(host.pool, catalog, contexts, states, host.clock)
    host.listener(STATES_CHANNEL, decider.on_states_notify)
    releaser = Releaser(decider, host.peers["delivery"], settings.release_batch, settings.release_poll_seconds,
                        settings.failures.policy(), host.registry)
    decider.on_due = releaser.wake
    host.listener(ERASED_USERS_CHANNEL, decider.on_user_erased)
    host.run_in_background(releaser.run(), "release")
    replays = Replays(host.pool, REQUEST_RESPONSES, timedelta(hours=settings.request_id_window_hours),
                      host.clock, per_user=True)
    kept = [replays.retention(), *settings.retentions()]
    host.run_in_background(prune_loop(host.pool, host.clock, kept, settings.maintenance_interval_seconds), "prune")
    decision_service_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(
        decider, replays, host.peers["segmentation"], host.peers["delivery"]), host.server)
    decision_internal_service_pb2_grpc.add_DecisionInternalServiceServicer_to_server(
        DecisionInternalServicer(decider), host.server)
    user_token_key_service_pb2_grpc.add_UserTokenKeyServiceServicer_to_server(
        UserTokenKeyServicer(host.accounts_pool), host.server)
    api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(host.accounts_pool), host.server)


SPEC = ServiceSpec(
    name="decision",
    migrations=Path(__file__).parent / "migrations",
    policy=POLICY,
    service_names=(
        decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
        decision_internal_service_pb2.DESCRIPTOR.services_by_name["DecisionInternalService"].full_name,
        user_token_key_service_pb2.DESCRIPTOR.services_by_name["UserTokenKeyService"].full_name,
        api_key_service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
    ),
    settings=DecisionSettings.from_env,
    wire=wire,
    peers=("segmentation", "delivery"),
    # Events come only from ingestion's log (internal ApplyEvents), checked at its door.
    checked_upstream=INGESTED,
)
