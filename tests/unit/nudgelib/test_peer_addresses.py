"""NUDGE_<SERVICE>_ADDR as operators write it, and the gRPC target each becomes."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError, ServiceSettings, peer_target

ENV = {"DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16}


@pytest.mark.parametrize(("raw", "target"), [
    ("decision:50053", "decision:50053"),                      # a name: DNS, every address it resolves to
    ("dns:///decision.nudge.svc:50053", "dns:///decision.nudge.svc:50053"),
    ("127.0.0.1:50053", "127.0.0.1:50053"),
    ("127.0.0.1:50053, 127.0.0.1:50153", "ipv4:127.0.0.1:50053,127.0.0.1:50153"),
    ("[::1]:50053,[::1]:50153", "ipv6:[::1]:50053,[::1]:50153"),
])
def test_an_address_a_list_or_a_dns_target_becomes_a_target_balanced_round_robin(raw, target):
    assert peer_target("NUDGE_DECISION_ADDR", raw) == target


@pytest.mark.parametrize(("raw", "message"), [
    ("decision", "NUDGE_DECISION_ADDR must be host:port, a comma-separated list of ip:port, or dns:///host:port; "
                 "got 'decision'"),
    ("10.0.0.1:99999", "NUDGE_DECISION_ADDR must be host:port"),
    ("decision-a:50053,decision-b:50053", "NUDGE_DECISION_ADDR: a list holds IP addresses, got 'decision-a'"),
    ("127.0.0.1:50053,[::1]:50053", "NUDGE_DECISION_ADDR: a list holds IPv4 or IPv6 addresses, not both"),
])
def test_an_address_grpc_could_not_use_stops_start_up_naming_the_variable(raw, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        peer_target("NUDGE_DECISION_ADDR", raw)


def test_a_service_gets_its_peers_as_targets_and_a_connection_age_by_default():
    settings = ServiceSettings.from_env("delivery", {**ENV, "NUDGE_DECISION_ADDR": "127.0.0.1:1,127.0.0.1:2"})
    assert settings.peers["decision"] == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert (settings.max_connection_age, settings.max_connection_age_grace) == (300.0, 3600.0)
    with pytest.raises(ConfigError, match="NUDGE_INGESTION_ADDR"):
        ServiceSettings.from_env("delivery", {**ENV, "NUDGE_INGESTION_ADDR": "a:1,b:2"})
