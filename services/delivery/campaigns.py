"""A campaign's definition, asked of decision (which owns campaigns), for the reads that
answer per campaign: statistics and survey answers."""

from __future__ import annotations

import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_public_pb
from nudgelib.clients import Peer
from nudgelib.errors import NotFound


class Campaigns:
    def __init__(self, decision: Peer) -> None:
        self._decision = decision
        self._stub = decision_grpc.DecisionInternalServiceStub(decision.channel)

    async def get(self, app_id: str, campaign_id: str) -> decision_public_pb.Campaign:
        """The campaign's latest definition; NotFound for an unknown id or another app's
        (decision unreachable: Unavailable, from the peer)."""
        return (await self.definition(app_id, campaign_id)).campaign

    async def definition(self, app_id: str, campaign_id: str) -> decision_pb.GetCampaignDefinitionResponse:
        """The campaign's latest definition and the app's time zone, as get() says."""
        try:
            reply = await self._decision.call(self._stub.GetCampaignDefinition, decision_pb.GetCampaignDefinitionRequest(
                app_id=app_id, campaign_id=campaign_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"campaign {campaign_id!r} not found") from exc
            raise
        return reply
