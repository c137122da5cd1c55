"""`nudge run --replicas`: what it accepts, the ports each replica gets, and the checks before
anything starts naming a replica's or the edge's port."""

from __future__ import annotations

import socket

import pytest

from nudgelib.config import SERVICES, ConfigError, ServiceSettings
from nudgetools import local
from nudgetools.cluster import Cluster, replica_ports
from nudgetools.edge import Edge, EdgeSettings

BASE = {"ingestion": 50051, "segmentation": 50052, "decision": 50053, "delivery": 50054}


def test_replicas_are_counted_per_service_and_anything_else_is_refused_naming_where_it_came_from():
    assert local.parse_replicas("decision=3, delivery=2") == {"decision": 3, "delivery": 2}
    assert local.parse_replicas("") == {}
    with pytest.raises(ConfigError, match=r"^--replicas must be like decision=3,delivery=2 .*got 'billing=2'"):
        local.parse_replicas("billing=2", "--replicas")
    with pytest.raises(ConfigError, match=r"^NUDGE_REPLICAS must be like .*got 'decision'"):
        local.parse_replicas("decision")
    with pytest.raises(ConfigError, match=r"^NUDGE_REPLICAS: decision's replicas must be a whole number from 1 to 16, "
                                          r"got '0'"):
        local.parse_replicas("decision=0")


def test_each_replica_listens_a_hundred_ports_above_the_one_before_and_peers_get_every_address():
    ports = replica_ports(BASE, {"decision": 3, "delivery": 2})
    assert ports == {"ingestion": 50051, "segmentation": 50052, "decision-1": 50053, "decision-2": 50153,
                     "decision-3": 50253, "delivery-1": 50054, "delivery-2": 50154}
    assert replica_ports({"decision": 0}, {"decision": 2}) == {"decision-1": 0, "decision-2": 0}  # metrics off

    cluster = Cluster(database_url="postgresql://x", internal_token="t" * 16, ports=ports,
                      metrics_ports=replica_ports({n: 9461 + i for i, n in enumerate(SERVICES)}, {"decision": 3,
                                                                                                  "delivery": 2}))
    env = cluster.env("decision-2")
    assert (env["NUDGE_DECISION_PORT"], env["NUDGE_DECISION_METRICS_PORT"]) == ("50153", "9563")
    assert env["NUDGE_DECISION_ADDR"] == "127.0.0.1:50053,127.0.0.1:50153,127.0.0.1:50253"
    assert env["NUDGE_INGESTION_ADDR"] == "127.0.0.1:50051"
    assert cluster.target("decision") == "127.0.0.1:50053"  # a service's first replica


def test_a_busy_port_of_a_replica_or_of_the_edge_stops_nudge_run_naming_it():
    env = {"DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16}
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        settings = {n: ServiceSettings.from_env(n, {**env, f"NUDGE_{n.upper()}_PORT": "0",
                                                    f"NUDGE_{n.upper()}_METRICS_PORT": "0"}) for n in SERVICES}
        settings["decision"] = ServiceSettings.from_env("decision", {**env, "NUDGE_DECISION_PORT": str(port - 100),
                                                                     "NUDGE_DECISION_METRICS_PORT": "0"})
        assert local.busy_port(settings, {"decision": 2}) == (
            f"port {port} (NUDGE_DECISION_PORT, decision, replica decision-2) on 127.0.0.1 is in use by another process")
        quiet = {**settings, "decision": settings["ingestion"]}
        edge = EdgeSettings.from_env({"NUDGE_EDGE_ADMIN_PORT": str(port)})
        assert local.busy_port(quiet, {}, edge) == (
            f"port {port} (NUDGE_EDGE_ADMIN_PORT, the edge) on 127.0.0.1 is in use by another process")


def test_the_banner_puts_the_edge_first_and_its_examples_go_through_it(tmp_path):
    ports = replica_ports({n: 51000 + i for i, n in enumerate(SERVICES)}, {"delivery": 2})
    cluster = Cluster(database_url="postgresql://x", internal_token="t" * 16, ports=ports,
                      metrics_ports={n: 9000 + i for i, n in enumerate(ports)},
                      edge=Edge(18080, 19901, tmp_path / "envoy.yaml"))
    text = local.banner(cluster, "app_1", {"admin": "nudge_a", "events": "nudge_e", "client": "nudge_c"})
    rows = text.splitlines()[2:8]
    assert rows[0].split()[:3] == ["edge", "grpc", "127.0.0.1:18080"]
    assert "http://127.0.0.1:19901/stats/prometheus" in rows[0]
    assert [r.split()[0] for r in rows[1:]] == ["ingestion", "segmentation", "decision", "delivery-1", "delivery-2"]
    assert "http://127.0.0.1:18080/nudge.ingestion.v1.IngestionService/TrackEvents" in text
    assert "http://127.0.0.1:18080/nudge.delivery.v1.DeliveryService/FetchMessages" in text
