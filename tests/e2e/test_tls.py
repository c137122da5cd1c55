"""Encryption in transit, end to end: the four service processes with mutual TLS between them
and Envoy in front with a TLS listener, every certificate generated here (nudgetools.certs).

What a client sees: through the edge, with the CA, the whole path works (events in, the
triggered message out); without the CA the edge refuses the connection. What a caller of an
internal RPC sees: without a client certificate signed by the CA nothing gets through, the
internal token notwithstanding, whether it is a plain client or a service's own peer client.
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
import pytest

from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudge_client import AsyncNudge
from nudgelib.clients import Peer
from nudgelib.errors import Unavailable
from nudgelib.tls import TlsFiles
from nudgetools import certs, demo
from nudgetools.cluster import EDGE, Cluster, free_replica_ports
from nudgetools.edge import Edge
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.helpers import Clients, create_app, event, track

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_certs(tmp_path_factory) -> certs.LocalCerts:
    return certs.issue(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory) -> certs.LocalCerts:
    """Certificates of the same names from another CA."""
    return certs.issue(tmp_path_factory.mktemp("other-tls"), names=("operator",))


@pytest.fixture(scope="module")
async def cluster(database_url, tmp_path_factory, local_certs):
    logs = tmp_path_factory.mktemp("tls-logs")
    ports, metrics_ports, edge_ports = free_replica_ports({}, extra=2)
    c = Cluster(database_url=database_url, internal_token=INTERNAL_TOKEN, ports=ports, metrics_ports=metrics_ports,
                extra_env={"NUDGE_LOG_FORMAT": "json", "NUDGE_SHUTDOWN_GRACE_SECONDS": "2"}, log_dir=logs,
                edge=Edge(*edge_ports, logs / "envoy.yaml"), certs=local_certs)
    c.start()
    try:
        await c.wait_ready(timeout=90)
        yield c
    finally:
        c.stop()


def trusting(local: certs.LocalCerts, identity: str | None = None) -> grpc.ChannelCredentials:
    """The CA of `local` trusted; `identity`'s certificate presented, if given."""
    if identity is None:
        return grpc.ssl_channel_credentials(local.ca.read_bytes())
    return grpc.ssl_channel_credentials(local.ca.read_bytes(), local.key(identity).read_bytes(),
                                        local.cert(identity).read_bytes())


async def test_the_whole_path_works_through_the_tls_edge_with_mutual_tls_behind_it(cluster, local_certs, database_url):
    app = await create_app(database_url)
    edge = cluster.target(EDGE)
    # The operator's calls go through the edge too: the CA is all a client of the edge needs.
    _, campaign_id = await demo.seed(edge, edge, app.keys["admin"], trusting(local_certs))
    async with grpc.aio.secure_channel(edge, trusting(local_certs)) as channel:
        api = Clients(lambda _: channel)
        reply = await api.ingestion.TrackEvents(track([event("t1", "tls-u1", "signup")]), metadata=app.auth("events"))
        assert reply.accepted_count == 1

        # Ingestion -> segmentation -> decision -> delivery, each hop over mutual TLS.
        async def fetch():
            return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="tls-u1"),
                                                     metadata=app.auth("client"))).messages

        (message,) = await eventually(fetch, timeout=20)
        assert (message.campaign_id, message.content.title) == (campaign_id, "Welcome to Nudge!")
    # Envoy spoke TLS to every service it called (health checks included).
    stats = await cluster.edge.stats()
    for name in ("ingestion", "segmentation", "decision", "delivery"):
        assert stats.get(f"cluster.{name}.ssl.handshake", 0) > 0, name


async def test_the_python_client_and_the_cli_reach_the_tls_edge_with_the_ca(cluster, local_certs, database_url):
    app = await create_app(database_url)
    edge = cluster.target(EDGE)
    await demo.seed(edge, edge, app.keys["admin"], trusting(local_certs))
    async with AsyncNudge(edge, app.keys["admin"], credentials=trusting(local_certs)) as nudge:
        assert [c.name for c in (await nudge.list_campaigns()).campaigns] == ["Welcome"]

    async def cli(**tls: str):
        env = {**os.environ, "NUDGE_ADMIN_KEY": app.keys["admin"], "NUDGE_TARGET": edge, **tls}
        for name in ("NUDGE_TLS_CA_FILE", "NUDGE_TLS_CERT_FILE", "NUDGE_TLS_KEY_FILE"):
            if name not in tls:
                env.pop(name, None)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "nudgetools.cli", "campaigns", "list",
                                                    "--timeout", "3", env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await cli(NUDGE_TLS_CA_FILE=str(local_certs.ca))
    assert code == 0 and "Welcome" in out, err
    code, out, err = await cli()
    assert code != 0 and "Welcome" not in out
    assert "UNAVAILABLE" in err, err


async def test_a_client_without_the_ca_is_refused_by_the_edge(cluster, database_url, stranger):
    app = await create_app(database_url)
    request = delivery_pb.FetchMessagesRequest(user_id="tls-u2")
    # The system's CAs (the local CA is not among them), a CA of another installation, and
    # plaintext on the TLS port: no handshake, no call.
    for credentials in (grpc.ssl_channel_credentials(), trusting(stranger), None):
        channel = (grpc.aio.secure_channel(cluster.target(EDGE), credentials) if credentials
                   else grpc.aio.insecure_channel(cluster.target(EDGE)))
        async with channel:
            api = Clients(lambda _: channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await api.delivery.FetchMessages(request, metadata=app.auth("client"), timeout=3)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, credentials


async def test_a_client_without_a_client_certificate_cannot_call_an_internal_rpc(cluster, local_certs, stranger):
    request = seg_internal_pb.GetUserContextRequest(app_id="app", user_id="u")
    token = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
    target = cluster.target("segmentation")

    async def call(credentials: grpc.ChannelCredentials | None):
        channel = grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
        async with channel:
            stub = seg_internal_grpc.SegmentationInternalServiceStub(channel)
            return await stub.GetUserContext(request, metadata=token, timeout=3)

    # The internal token alone: over plaintext, over TLS without a certificate, and with a
    # certificate another CA signed.
    foreign = grpc.ssl_channel_credentials(local_certs.ca.read_bytes(), stranger.key("operator").read_bytes(),
                                           stranger.cert("operator").read_bytes())
    for credentials in (None, trusting(local_certs), foreign):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(credentials)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # With a certificate the CA signed, the same call goes through.
    reply = await call(trusting(local_certs, "operator"))
    assert reply.HasField("context")


async def test_a_service_without_a_client_certificate_cannot_call_another(cluster, local_certs):
    """A service's own peer client (nudgelib.clients.Peer), as decision calls segmentation:
    with no TLS settings it is refused; with the service's certificate it is let in."""
    request = seg_internal_pb.GetUserContextRequest(app_id="app", user_id="u")
    target = cluster.target("segmentation")
    plain = Peer("segmentation", target, INTERNAL_TOKEN, timeout=2)
    try:
        with pytest.raises(Unavailable):
            await plain.call(seg_internal_grpc.SegmentationInternalServiceStub(plain.channel).GetUserContext, request)
    finally:
        await plain.close()
    files = TlsFiles(local_certs.cert("decision").read_bytes(), local_certs.key("decision").read_bytes(),
                     local_certs.ca.read_bytes())
    # Dialled as a list of replicas' addresses (here the one replica twice), as `nudge run`
    # and NUDGE_<SERVICE>_ADDR give them: the certificate is checked for `segmentation`.
    mutual = Peer("segmentation", f"ipv4:{target},{target}", INTERNAL_TOKEN, files, timeout=5)
    try:
        reply = await mutual.call(seg_internal_grpc.SegmentationInternalServiceStub(mutual.channel).GetUserContext,
                                  request)
        assert reply.HasField("context")
    finally:
        await mutual.close()
    # Another service's replica, with a certificate the CA signed but for another name, is
    # not taken for segmentation.
    impostor = Peer("segmentation", cluster.target("decision"), INTERNAL_TOKEN, files, timeout=2)
    try:
        with pytest.raises(Unavailable):
            await impostor.call(seg_internal_grpc.SegmentationInternalServiceStub(impostor.channel).GetUserContext,
                                request)
    finally:
        await impostor.close()
