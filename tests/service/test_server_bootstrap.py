"""What every service gets from the shared bootstrap: health that tracks readiness and
shutdown, reflection, metrics, and errors that never surface as UNKNOWN."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import start_host
from tests.helpers import Clients, expect_error, violated_fields


async def test_health_goes_not_serving_on_shutdown(database_url):
    host = await start_host(SEGMENTATION, database_url, {})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    stub = health_pb2_grpc.HealthStub(channel)
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="nudge.segmentation.v1.SegmentationService"))
    seen = [(await watch.read()).status]
    stopping = asyncio.create_task(host.stop())
    seen.append((await watch.read()).status)
    await stopping
    await channel.close()
    assert seen == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING]


async def test_reflection_lists_public_and_internal_services(stack):
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel("decision"))

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    reply = [r async for r in stub.ServerReflectionInfo(requests())][0]
    names = {s.name for s in reply.list_services_response.service}
    assert {"nudge.decision.v1.DecisionService", "nudge.decision.v1.DecisionInternalService",
            "grpc.health.v1.Health"} <= names


async def test_bad_request_is_invalid_argument_naming_the_field(stack, app):
    api = Clients(stack.channel)
    bad = seg_pb.CreateSegmentRequest(name="x", rule=seg_pb.Rule(group=seg_pb.Group(
        operator=seg_pb.GROUP_OPERATOR_AND, rules=[seg_pb.Rule(event=seg_pb.EventCondition(name="open"))])))
    exc = await expect_error(api.segmentation.CreateSegment(bad, metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"rule.group.rules[0].event.operator"}
    assert "operator" in exc.details()


async def test_a_method_without_a_handler_is_unimplemented_not_unknown():
    """Generated servicer bases raise NotImplementedError; callers must see UNIMPLEMENTED."""
    import prometheus_client as prom

    from nudge.delivery.v1 import delivery_internal_service_pb2 as internal_pb
    from nudge.delivery.v1 import delivery_internal_service_pb2_grpc as internal_grpc
    from nudgelib.interceptor import AccessPolicy, Authenticator, ServerInterceptor
    from nudgelib.metrics import RpcMetrics
    from tests.conftest import INTERNAL_TOKEN

    interceptor = ServerInterceptor(Authenticator(keys=None, internal_token=INTERNAL_TOKEN), AccessPolicy({}),
                                    RpcMetrics("test", prom.CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    internal_grpc.add_DeliveryInternalServiceServicer_to_server(internal_grpc.DeliveryInternalServiceServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = internal_grpc.DeliveryInternalServiceStub(channel)
            await expect_error(stub.EraseUser(internal_pb.EraseUserRequest(app_id="a", user_id="u"),
                                              metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),)),
                               grpc.StatusCode.UNIMPLEMENTED)
    finally:
        await server.stop(0)


async def test_metrics_count_calls_by_method_and_code(stack, app):
    api = Clients(stack.channel)
    await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("admin"))
    await expect_error(api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(),
                                                  metadata=app.auth("client")), grpc.StatusCode.PERMISSION_DENIED)
    port = stack.hosts["decision"].metrics_port
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
    assert 'nudge_rpc_requests_total{code="OK",method="ListCampaigns",service="decision"}' in body
    assert 'nudge_rpc_requests_total{code="PERMISSION_DENIED",method="ListCampaigns",service="decision"}' in body
    assert 'nudge_rpc_duration_seconds_bucket{code="OK",le="0.005",method="ListCampaigns",service="decision"}' in body
